// Ports for the processes a run restarts (agents, coordinators). A port from
// the kernel's ephemeral range can be taken by an outgoing connection's local
// port while its process is down, and the restart would then fail with
// EADDRINUSE; ports below that range are only ever taken by a listener.

import { isPortFree } from "../pgcluster/index.js";

const LOW = 20_000;
const HIGH = 32_000;
const handedOut = new Set<number>();

/** A free port below the ephemeral range, not handed out before in this process. */
export async function restartablePort(host = "127.0.0.1"): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW));
    if (handedOut.has(port) || !(await isPortFree(port, host))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free port found between ${LOW} and ${HIGH}`);
}

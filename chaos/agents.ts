// The agents under test, each a child process in its own process group,
// reaching every database server and the coordinator through proxies the
// harness controls.

import { writeFileSync } from "node:fs";
import path from "node:path";
import { restartablePort } from "./ports.js";
import { ChaosProxy } from "./proxy.js";
import { ProcessGroup } from "./process-group.js";
import { agentTimingFlags } from "./timings.js";

export interface AgentSetup {
  readonly bin: string;
  readonly logDir: string;
  /** Each database server's port, in the order the agents' URL lists them. */
  readonly databasePorts: readonly number[];
  /** Every coordinator's port: each agent reaches each through a proxy of its own. */
  readonly coordinatorPorts: readonly number[];
  /** node id → its agent token (a line of the coordinator's token file). */
  readonly tokens: ReadonlyMap<string, string>;
}

const HOOK = new URL("./slow-loop-hook.mjs", import.meta.url).pathname;

export class ChaosAgent {
  readonly url: string;
  private readonly blockFile: string;

  constructor(
    readonly nodeId: string,
    readonly port: number,
    readonly group: ProcessGroup,
    readonly databaseProxies: readonly ChaosProxy[],
    readonly coordinatorProxies: readonly ChaosProxy[],
    logDir: string,
  ) {
    this.url = `http://127.0.0.1:${port}`;
    this.blockFile = path.join(logDir, `${nodeId}.block-ms`);
  }

  /** Block the agent's event loop for ms (the preloaded hook does it on SIGUSR2). */
  blockEventLoop(ms: number): void {
    writeFileSync(this.blockFile, String(ms));
    this.group.signal("SIGUSR2");
  }
}

export async function startAgents(nodes: number, setup: AgentSetup): Promise<ChaosAgent[]> {
  const agents: ChaosAgent[] = [];
  for (let i = 0; i < nodes; i++) {
    const nodeId = `cp-node-${i + 1}`;
    const databaseProxies = setup.databasePorts.map((port, j) => new ChaosProxy(`${nodeId}→db${j}`, "127.0.0.1", port));
    for (const p of databaseProxies) await p.listen();
    const coordinatorProxies = setup.coordinatorPorts.map((port, j) => new ChaosProxy(`${nodeId}→coordinator-${j + 1}`, "127.0.0.1", port));
    for (const p of coordinatorProxies) await p.listen();
    const port = await restartablePort();
    const hosts = databaseProxies.map((p) => `127.0.0.1:${p.port}`).join(",");
    const token = setup.tokens.get(nodeId);
    if (!token) throw new Error(`no agent token for ${nodeId}`);
    const blockFile = path.join(setup.logDir, `${nodeId}.block-ms`);
    const group = new ProcessGroup({
      name: nodeId,
      command: process.execPath,
      args: [
        "--import", HOOK,
        setup.bin,
        "agent",
        "--node-id", nodeId,
        "--database-url", `postgres://postgres@${hosts}/postgres?target_session_attrs=read-write`,
        "--coordinator-url", coordinatorProxies.map((p) => `http://127.0.0.1:${p.port}`).join(","),
        "--coordinator-token", token,
        "--listen", `127.0.0.1:${port}`,
        "--priority", String(100 * (nodes - i)),
        ...agentTimingFlags(),
      ],
      logFile: path.join(setup.logDir, `${nodeId}.log`),
      env: { ...process.env, AUTONOMY_LOG_LEVEL: "info", AUTONOMY_CHAOS_BLOCK_FILE: blockFile },
    });
    agents.push(new ChaosAgent(nodeId, port, group, databaseProxies, coordinatorProxies, setup.logDir));
  }
  for (const a of agents) a.group.start();
  return agents;
}

/*
 * The floor under the `fanout` figure: node:http2 alone, no gRPC, no
 * coordinator. One server holds `streams` response streams from client
 * processes laid out as the fan-out bench lays them out (2 processes × 5
 * connections), writes one 120-byte DATA frame to every stream, and each
 * client notes when its streams receive it. Whatever the fan-out costs above
 * this is ours; this much is Node's HTTP/2 on this machine.
 *
 *   node --import tsx bench/http2-floor.ts [streams=10000] [rounds=6]
 *
 * The first rounds pay for cold code (JIT), as the first leader change of a
 * coordinator does; read the later ones for the steady state.
 */
import { fork } from "node:child_process";
import http2 from "node:http2";
import { summarize } from "./stats.js";

const PROCESSES = 2;
const CONNECTIONS = 5;
const role = process.argv[2];

if (role === "server") {
  const streams: http2.ServerHttp2Stream[] = [];
  const want = Number(process.argv[3]);
  const server = http2.createServer({ settings: { maxConcurrentStreams: want } });
  server.on("stream", (s) => {
    s.respond({ ":status": 200, "content-type": "application/grpc" });
    streams.push(s);
    if (streams.length === want) process.send!({ kind: "ready" });
  });
  server.listen(0, "127.0.0.1", () => process.send!({ kind: "port", port: (server.address() as { port: number }).port }));
  const frame = Buffer.alloc(120, 7);
  process.on("message", () => {
    const cpu = process.cpuUsage();
    const at = performance.timeOrigin + performance.now();
    for (const s of streams) s.write(frame);
    // Sending happens after this turn; the CPU figure is taken once it is done.
    setTimeout(() => {
      const used = process.cpuUsage(cpu);
      process.send!({ kind: "sent", at, cpuMs: (used.user + used.system) / 1000 });
    }, 500);
  });
} else if (role === "client") {
  const [port, count] = process.argv.slice(3).map(Number) as [number, number];
  let arrivals: number[] = [];
  let opened = 0;
  for (let c = 0; c < CONNECTIONS; c++) {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    for (let i = 0; i < count / CONNECTIONS; i++) {
      const req = session.request({ ":method": "POST", ":path": "/floor" });
      req.on("response", () => ++opened === count && process.send!({ kind: "opened" }));
      req.on("data", () => {
        arrivals.push(performance.timeOrigin + performance.now());
        if (arrivals.length === count) {
          process.send!({ kind: "arrivals", arrivals });
          arrivals = [];
        }
      });
    }
  }
} else {
  const streams = Number(process.argv[2] ?? 10_000);
  const rounds = Number(process.argv[3] ?? 6);
  const self = new URL(import.meta.url).pathname;
  const execArgv = ["--import", "tsx"];
  const server = fork(self, ["server", String(streams)], { execArgv });
  const next = (p: ReturnType<typeof fork>) => new Promise<{ kind: string; [k: string]: unknown }>((r) => p.once("message", r as (m: unknown) => void));
  const { port } = (await next(server)) as unknown as { port: number };
  const serverReady = next(server);
  const clients = Array.from({ length: PROCESSES }, () => fork(self, ["client", String(port), String(streams / PROCESSES)], { execArgv }));
  await Promise.all(clients.map(next));
  await serverReady;
  process.stdout.write(`node:http2 floor: one 120-byte frame to each of ${streams} streams (${PROCESSES} client processes × ${CONNECTIONS} connections)\n`);
  process.stdout.write("round  median   p99      max      server CPU\n");
  for (let round = 1; round <= rounds; round++) {
    const arrivals = Promise.all(clients.map(next));
    const sent = next(server);
    server.send({ kind: "write" });
    const [all, s] = [(await arrivals).flatMap((m) => m.arrivals as number[]), (await sent) as unknown as { at: number; cpuMs: number }];
    const lat = summarize(all.map((a) => a - s.at));
    process.stdout.write(`${String(round).padEnd(7)}${lat.median.toFixed(1).padEnd(9)}${lat.p99.toFixed(1).padEnd(9)}${lat.max.toFixed(1).padEnd(9)}${s.cpuMs.toFixed(0)} ms\n`);
    await new Promise((r) => setTimeout(r, 300));
  }
  for (const p of [server, ...clients]) p.kill();
}

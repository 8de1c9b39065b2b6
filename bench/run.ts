import os from "node:os";
import { agentCrashBench } from "./agent-crash.js";
import { databaseFailoverBench } from "./database-failover.js";
import { agentLoadBench } from "./agent-load.js";
import { plannedFailoverBench } from "./planned-failover.js";
import { splitBrainBench } from "./split-brain.js";
import { table, type BenchResult } from "./stats.js";
import { watchFanoutBench } from "./watch-fanout.js";
import { findPgBinaries } from "../pgcluster/index.js";
import { VERSION } from "../core/version.js";
import { TestPki, useTestPki } from "../test/support/pki.js";

/**
 * `npm run bench`: the speed figures of SPEC §7, printed as a table and as
 * JSON with the machine, versions and settings. Speed lives here, never in
 * the tests.
 *
 * BENCH_ROUNDS (default 10) sets the rounds of the per-event benchmarks;
 * BENCH_TLS=1 runs everything with mTLS on every port;
 * BENCH_ONLY=crash,split-brain,failover,db-failover,load,fanout runs a subset
 * (patroni runs only with BENCH_PATRONI=1 or --patroni);
 * BENCH_AGENTS, BENCH_LOAD_SECONDS, BENCH_WATCHERS and BENCH_FANOUT_CHANGES
 * size the two load benchmarks.
 */
const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const rounds = env("BENCH_ROUNDS", 10);
const only = process.env.BENCH_ONLY?.split(",").map((s) => s.trim());
const load = { agents: env("BENCH_AGENTS", 1000), seconds: env("BENCH_LOAD_SECONDS", 20), intervalMs: 200, transports: 8 };
const fanout = { streams: env("BENCH_WATCHERS", 10_000), processes: 2, transports: 5, changes: env("BENCH_FANOUT_CHANGES", 3) };

const benches: [string, () => Promise<BenchResult | BenchResult[]>][] = [
  ["crash", async () => [await agentCrashBench(rounds, true), await agentCrashBench(rounds, false)]],
  ["split-brain", () => splitBrainBench(rounds)],
  ["failover", () => plannedFailoverBench(rounds)],
  ["db-failover", () => databaseFailoverBench(Math.max(5, Math.round(rounds / 2)))],
  ...(process.env.BENCH_PATRONI === "1" || process.argv.includes("--patroni") ? [["patroni", async () => (await import("./patroni-failover.js")).patroniFailoverBench()] as [string, () => Promise<BenchResult[]>]] : []), // opt-in: needs patroni + etcd-server
  // The two load benchmarks last: they saturate the machine for a while.
  ["load", () => agentLoadBench(load)],
  ["fanout", () => watchFanoutBench(fanout)],
];

// BENCH_TLS=1: every agent and coordinator with mTLS (a throwaway CA), every
// client with an admin certificate, to compare with the cleartext figures.
const tls = process.env.BENCH_TLS === "1";
if (tls) useTestPki(await TestPki.create());

const results: BenchResult[] = [];
const started = performance.now();
for (const [name, run] of benches) {
  if (only && !only.includes(name)) continue;
  process.stderr.write(`bench: ${name}…\n`);
  results.push(...[await run()].flat().map((r) => (tls ? { ...r, name: `${r.name} [mTLS]`, settings: { ...r.settings, tls: "mTLS" } } : r)));
}

const machine = {
  cpus: os.cpus().length,
  cpuModel: os.cpus()[0]?.model,
  memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  node: process.version,
  postgres: findPgBinaries().version,
  autonomy: VERSION,
  date: new Date().toISOString(),
};
const settings = { rounds, only: only ?? "all", tls, load, fanout, seconds: Math.round((performance.now() - started) / 1000) };
process.stdout.write(`\n${table(results)}\n\n`);
process.stdout.write(`${JSON.stringify({ machine, settings, results }, null, 2)}\n`);

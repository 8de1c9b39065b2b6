import { agentCrashBench } from "./agent-crash.js";
import { databaseFailoverBench } from "./database-failover.js";
import { hungLeaderBench } from "./hung-leader.js";
import { agentLoadBench } from "./agent-load.js";
import { coordinatorScaleBench } from "./coordinator-scale.js";
import { coordinatorTakeoverBench } from "./coordinator-takeover.js";
import { plannedFailoverBench } from "./planned-failover.js";
import { splitBrainBench } from "./split-brain.js";
import { table, type BenchResult } from "./stats.js";
import { watchFanoutBench } from "./watch-fanout.js";
import { defaultResultsPath, describeMachine, writeBenchFile } from "./report/bench-file.js";
import { compareCommand } from "./report/compare-command.js";
import { parseBenchArgs } from "./report/options.js";
import { TestPki, useTestPki } from "../test/support/pki.js";
import { runAsDeployed } from "../test/support/processes.js";
import { BIN, ensureBuilt } from "../scripts/compiled-cli.js";

/**
 * `npm run bench`: the speed figures of SPEC §7, printed as a table and
 * written as JSON (machine, versions, settings and every sample) for a later
 * comparison. Speed lives here, never in the tests. See docs/benchmarks.md.
 *
 * Flags (after `npm run bench --`):
 *   --quick                 a reduced set and rounds, under 2 minutes: crash,
 *                           split-brain, failover and coordinator takeover at 5
 *                           rounds, load with 200 agents for 5 s, fan-out over
 *                           1,000 streams, scale at 500 agents and 20 × 10
 *   --out FILE              where to write the JSON (default
 *                           bench-results/bench-<ISO time>.json)
 *   --compare OLD NEW       compare two results files instead of running: the
 *                           median, p90 and max of every benchmark in both, the
 *                           change, and REGRESSION where median or p90 rose by
 *                           more than 2 ms and 10%; exits 0
 *   --fail-on-regression    with --compare: exit 1 when anything regressed
 *   --patroni               also run bench/patroni-failover.ts (our agents on
 *                           Patroni; needs patroni and etcd-server)
 *
 * Environment (kept from before the flags; they override --quick):
 *   BENCH_ROUNDS (default 10, quick 5) sets the rounds of the per-event benchmarks;
 *   BENCH_TLS=1 runs everything with mTLS on every port;
 *   BENCH_ONLY=crash,split-brain,failover,db-failover,hung-leader,takeover,load,fanout,scale,patroni
 *   runs a subset (patroni runs only with BENCH_PATRONI=1 or --patroni);
 *   BENCH_AGENTS, BENCH_LOAD_SECONDS, BENCH_WATCHERS and BENCH_FANOUT_CHANGES
 *   size the two load benchmarks; BENCH_SCALE_SECONDS the measuring time of
 *   each scale step (default 10).
 *
 * The comparison with Patroni, an etcd3 election and the advisory-lock floor
 * is a separate command: `npm run bench:peers` (bench/peers/run.ts).
 */
const options = (() => {
  try {
    return parseBenchArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n`);
    process.exit(2);
  }
})();

if (options.compare) process.exit(await compareCommand(options.compare, options.failOnRegression));

// What users run: the compiled CLI at the default log level (rebuilt first when the sources are newer).
ensureBuilt((line) => process.stderr.write(`bench: ${line}\n`));
runAsDeployed(BIN);

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const quick = options.quick;
const rounds = env("BENCH_ROUNDS", quick ? 5 : 10);
const patroni = process.env.BENCH_PATRONI === "1" || options.patroni;
// --quick leaves out db-failover (a fresh primary and standby every round); --patroni still adds patroni.
const only = process.env.BENCH_ONLY?.split(",").map((s) => s.trim()) ?? (quick ? ["crash", "split-brain", "failover", "takeover", "load", "fanout", "scale", "patroni"] : undefined);
const load = { agents: env("BENCH_AGENTS", quick ? 200 : 1000), seconds: env("BENCH_LOAD_SECONDS", quick ? 5 : 20), intervalMs: 200, transports: 8 };
// --quick: a smoke run of the scale figures at small counts; the full run holds 10,000 streams and searches the largest count.
const scale = quick
  ? { steps: [500], singleCluster: 500, clusterSteps: [20], agentsPerCluster: 10, seconds: 4, intervalMs: 200, transports: 8 }
  : { steps: [250, 500, 1_000, 2_000, 4_000, 6_000, 10_000], singleCluster: 10_000, clusterSteps: [25, 50, 100], agentsPerCluster: 20, seconds: env("BENCH_SCALE_SECONDS", 10), intervalMs: 200, transports: 8 };
const fanout = { streams: env("BENCH_WATCHERS", quick ? 1_000 : 10_000), processes: 2, transports: 5, changes: env("BENCH_FANOUT_CHANGES", quick ? 2 : 3) };

const benches: [string, () => Promise<BenchResult | BenchResult[]>][] = [
  ["crash", async () => [await agentCrashBench(rounds, "coordinator"), await agentCrashBench(rounds, "alone")]],
  ["split-brain", () => splitBrainBench(rounds)],
  ["failover", () => plannedFailoverBench(rounds)],
  ["db-failover", () => databaseFailoverBench(Math.max(5, Math.round(rounds / 2)))],
  ["hung-leader", () => hungLeaderBench(quick ? 3 : 5, quick ? 5 : 20)],
  ["takeover", () => coordinatorTakeoverBench(rounds)],
  // Opt-in: needs patroni + etcd-server.
  ...(patroni ? [["patroni", async () => (await import("./patroni-failover.js")).patroniFailoverBench()] as [string, () => Promise<BenchResult[]>]] : []),
  // The two load benchmarks last: they saturate the machine for a while.
  ["load", () => agentLoadBench(load)],
  ["fanout", () => watchFanoutBench(fanout)],
  ["scale", () => coordinatorScaleBench(scale)],
];

// BENCH_TLS=1: every agent and coordinator with mTLS (a throwaway CA), every
// client with an admin certificate, to compare with the cleartext figures.
const tls = process.env.BENCH_TLS === "1";
if (tls) useTestPki(await TestPki.create());

const machine = describeMachine();
const results: BenchResult[] = [];
const errors: Record<string, string> = {};
const started = performance.now();
for (const [name, run] of benches) {
  if (only && !only.includes(name)) continue;
  process.stderr.write(`bench: ${name}…\n`);
  try {
    results.push(...[await run()].flat().map((r) => (tls ? { ...r, name: `${r.name} [mTLS]`, settings: { ...r.settings, tls: "mTLS" } } : r)));
  } catch (err) {
    // One benchmark failing is a finding to print; the others' figures still count.
    errors[name] = (err as Error).message.split("\n")[0]!;
    process.stderr.write(`bench: ${name} failed: ${(err as Error).message.split("\n").slice(0, 4).join(" / ")}\n`);
  }
}

const seconds = Math.round((performance.now() - started) / 1000);
const settings = { quick, rounds, only: only ?? "all", patroni, tls, load, fanout, scale, seconds, errors };
const out = options.out ?? defaultResultsPath("bench");
await writeBenchFile(out, { kind: "bench", machine, settings, results });
process.stdout.write(`\n${table(results)}\n\n`);
for (const [name, message] of Object.entries(errors)) process.stdout.write(`${name} failed: ${message}\n`);
process.stdout.write(`${results.length} results in ${seconds} s; machine, settings and every sample in ${out}\n`);
process.stdout.write(`compare with an earlier run: npm run bench -- --compare OLD.json ${out}\n`);
if (Object.keys(errors).length > 0) process.exitCode = 1;

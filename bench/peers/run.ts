import { spawnSync } from "node:child_process";
import { agentCrashBench } from "../agent-crash.js";
import { defaultResultsPath, describeMachine, writeBenchFile } from "../report/bench-file.js";
import { parseBenchArgs } from "../report/options.js";
import { summarize, type BenchResult } from "../stats.js";
import { DEFAULT_PATRONI, FAST_PATRONI, patroniBinaries, patroniToolVersion, type PatroniTimings } from "../../test/support/patroni.js";
import { etcdElectionBench } from "./etcd-election.js";
import { floorBench } from "./floor.js";
import { oursSwitchoverBench } from "./ours-switchover.js";
import { patroniBench } from "./patroni.js";
import { peersTable, type PeerRow } from "./peers-table.js";
import { runAsDeployed } from "../../test/support/processes.js";
import { BIN, ensureBuilt } from "../../scripts/compiled-cli.js";

/**
 * `npm run bench:peers`: crash and switchover, in one run on this machine,
 * for ours, the advisory-lock floor, an etcd3 `Election.campaign` and
 * Patroni (Debian's patroni + etcd-server, three members on loopback) at its
 * defaults and at its fastest accepted settings; then our ratio to each. See
 * docs/benchmarks.md for what each figure measures and the caveats.
 *
 * Flags (after `npm run bench:peers --`):
 *   --install      when patroni or etcd is missing, apt-get install patroni
 *                  etcd-server first (root, Debian)
 *   --out FILE     where to write the JSON (default bench-results/peers-<ISO time>.json);
 *                  `npm run bench -- --compare` reads it like any results file
 * Environment: BENCH_PEERS_ROUNDS (default 5) rounds of every figure;
 * BENCH_ETCD_TTL (default 2, the shortest lease etcd grants with its default
 * election timeout) the etcd3 election's lease TTL in seconds;
 * BENCH_PEERS_ONLY=floor,ours,etcd,patroni-fast,patroni-defaults runs a subset
 * (etcd runs inside patroni-fast, on its etcd).
 */
const options = (() => {
  try {
    return parseBenchArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`bench:peers: ${(err as Error).message}\n`);
    process.exit(2);
  }
})();
const rounds = Number(process.env.BENCH_PEERS_ROUNDS ?? 5);
const etcdTtl = Number(process.env.BENCH_ETCD_TTL ?? 2);
const only = process.env.BENCH_PEERS_ONLY?.split(",").map((s) => s.trim());
const wanted = (name: string) => !only || only.includes(name) || (name === "patroni-fast" && only.includes("etcd"));

ensurePatroni(options.install);
// Ours runs as users run it: the compiled CLI at the default log level.
ensureBuilt((line) => process.stderr.write(`bench:peers: ${line}\n`));
runAsDeployed(BIN);

const machine = describeMachine();
const started = performance.now();
const results: BenchResult[] = [];
const rows: PeerRow[] = [];
const errors: Record<string, string> = {};
const versions = { patroni: patroniToolVersion("patroni"), etcd: patroniToolVersion("etcd"), etcd3: "1.1.2" };

const result = (name: string, samples: readonly number[], settings: Record<string, unknown>): BenchResult => {
  const r: BenchResult = { name, target: "-", unit: "ms", summary: summarize(samples), samples, settings, pass: undefined };
  results.push(r);
  return r;
};

/** Runs one system; a failure is printed and recorded, the other systems still run. */
async function step(name: string, run: () => Promise<void>): Promise<void> {
  if (!wanted(name)) return;
  process.stderr.write(`bench:peers: ${name}…\n`);
  try {
    await run();
  } catch (err) {
    errors[name] = (err as Error).message.split("\n")[0]!;
    process.stderr.write(`bench:peers: ${name} failed: ${(err as Error).message.split("\n").slice(0, 4).join(" / ")}\n`);
  }
}

await step("floor", async () => {
  const s = await floorBench(rounds);
  const settings = { rounds, design: "pg_advisory_lock waiters, epoch raised in one transaction, fenced writes (FOR SHARE on the term row)" };
  rows.push({
    system: "floor: advisory-lock agent",
    crash: result("peers: floor crash → next candidate elected", s.crash, settings),
    switchover: result("peers: floor switchover write gap", s.switchover, settings),
    caveat: "no lease, health or coordinator: the least a correct lock election does",
  });
});

await step("ours", async () => {
  const withCoordinator = await agentCrashBench(rounds, "coordinator");
  const alone = await agentCrashBench(rounds, "alone");
  const sw = await oursSwitchoverBench(rounds);
  const settings = { rounds, agentTimings: "FAST_TIMINGS (lease 1500ms, campaign 100ms)", oursRunAs: "dist/ (the compiled CLI), log level info", switchover: "coordinator + 3 agents, TriggerFailover (what `autonomy ha failover trigger` sends)", refused: sw.refused };
  const switchover = result("peers: ours switchover (ha failover trigger) write gap", sw.gaps, settings);
  rows.push({ system: "ours: with a coordinator", crash: result("peers: ours crash → Write-Ready (coordinator: designated successor)", withCoordinator.samples, withCoordinator.settings), switchover, caveat: "", ours: "crash" });
  rows.push({ system: "ours: no coordinator", crash: result("peers: ours crash → Write-Ready (no coordinator: followers queued on the lock)", alone.samples, alone.settings), caveat: "", ours: "crash-alone" });
});

const patroniRun = async (label: string, timings: PatroniTimings, withEtcd: boolean) => {
  const settings = { rounds, timings, patroni: versions.patroni, etcd: versions.etcd, members: 3, writer: "plain INSERTs on the multi-host URL (target_session_attrs=read-write)" };
  const s = await patroniBench(label, timings, rounds, withEtcd ? async (cluster) => {
    await step("etcd", async () => {
      const e = await etcdElectionBench({ etcdHosts: `127.0.0.1:${cluster.etcdClientPort}`, ttlSeconds: etcdTtl, databaseUrl: cluster.multiHostUrl, rounds });
      const etcdSettings = { rounds, ttlSeconds: etcdTtl, etcd3: versions.etcd3, etcd: versions.etcd, writer: "plain INSERTs while elected (no fencing token)" };
      rows.push({
        system: `etcd3 Election.campaign (ttl ${etcdTtl} s)`,
        crash: result(`peers: etcd3 election (ttl ${etcdTtl}s) crash → next candidate elected`, e.crash, etcdSettings),
        switchover: result(`peers: etcd3 election (ttl ${etcdTtl}s) resign write gap`, e.switchover, etcdSettings),
        caveat: "writes unfenced; the lease TTL bounds a crash",
      });
    });
  } : undefined);
  rows.push({
    system: `Patroni ${label} (ttl ${timings.ttl}/loop_wait ${timings.loop_wait}/retry_timeout ${timings.retry_timeout})`,
    crash: result(`peers: Patroni ${label} crash → first write on the promoted server`, s.crash, settings),
    switchover: result(`peers: Patroni ${label} switchover write gap`, s.switchover, settings),
    caveat: "also promotes a database",
  });
};
await step("patroni-fast", () => patroniRun("fastest", FAST_PATRONI, !only || only.includes("etcd")));
await step("patroni-defaults", () => patroniRun("defaults", DEFAULT_PATRONI, false));

const seconds = Math.round((performance.now() - started) / 1000);
const out = options.out ?? defaultResultsPath("peers");
await writeBenchFile(out, { kind: "bench:peers", machine, settings: { rounds, etcdTtl, only: only ?? "all", versions, seconds, errors }, results });
process.stdout.write(`\n${peersTable(rows)}\n\n`);
for (const [name, message] of Object.entries(errors)) process.stdout.write(`${name} failed: ${message}\n`);
process.stdout.write(`${results.length} results in ${seconds} s; machine, settings and every sample in ${out}\n`);

/** Says what is missing and how to get it; with --install, installs it (Debian, as root). */
function ensurePatroni(install: boolean): void {
  try {
    patroniBinaries();
    return;
  } catch (err) {
    if (!install) {
      process.stderr.write(`bench:peers: ${(err as Error).message}\nRun \`npm run bench:peers -- --install\` to install them (apt-get, as root on Debian).\n`);
      process.exit(1);
    }
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write("bench:peers: --install runs apt-get install patroni etcd-server and needs root.\n");
    process.exit(1);
  }
  process.stderr.write("bench:peers: apt-get install -y patroni etcd-server…\n");
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const ran = spawnSync("apt-get", ["install", "-y", "--no-install-recommends", "patroni", "etcd-server"], { stdio: "inherit", env });
  if (ran.status !== 0) {
    process.stderr.write(`bench:peers: apt-get install failed (exit ${ran.status ?? ran.signal}); try apt-get update first.\n`);
    process.exit(1);
  }
  // Debian starts etcd as a service on install; ours runs its own on free ports, so it is not in the way.
  patroniBinaries();
}


import os from "node:os";
import { agentCrashBench } from "./agent-crash.js";
import { table, type BenchResult } from "./stats.js";
import { findPgBinaries } from "../pgcluster/index.js";
import { VERSION } from "../cli/version.js";

/**
 * `npm run bench`: the speed figures of SPEC §7, printed as a table and as
 * JSON with the machine, versions and settings. Speed lives here, never in
 * the tests.
 */
const rounds = Number(process.env.BENCH_ROUNDS ?? 10);
const results: BenchResult[] = [];
results.push(await agentCrashBench(rounds, true));
results.push(await agentCrashBench(rounds, false));

const machine = {
  cpus: os.cpus().length,
  cpuModel: os.cpus()[0]?.model,
  memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  node: process.version,
  postgres: findPgBinaries().version,
  autonomy: VERSION,
  date: new Date().toISOString(),
};
process.stdout.write(`\n${table(results)}\n\n`);
process.stdout.write(`${JSON.stringify({ machine, results }, null, 2)}\n`);

import { mkdir, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { VERSION } from "../../core/version.js";
import { findPgBinaries } from "../../pgcluster/index.js";
import type { BenchResult } from "../stats.js";

/** The machine a run took place on, and the versions it ran. */
export interface Machine {
  readonly cpus: number;
  readonly cpuModel: string | undefined;
  readonly memoryGiB: number;
  readonly loadAverage: readonly number[];
  readonly os: string;
  readonly node: string;
  readonly postgres: string;
  readonly autonomy: string;
  readonly date: string;
}

/** What `npm run bench` and `npm run bench:peers` write: enough to compare two runs later. */
export interface BenchFile {
  readonly kind: "bench" | "bench:peers";
  readonly machine: Machine;
  readonly settings: Record<string, unknown>;
  readonly results: readonly BenchResult[];
}

export const RESULTS_DIR = "bench-results";

export function describeMachine(): Machine {
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    loadAverage: os.loadavg().map((x) => Math.round(x * 100) / 100),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    postgres: findPgBinaries().version,
    autonomy: VERSION,
    date: new Date().toISOString(),
  };
}

/** bench-results/<prefix>-<ISO time>.json, with ':' left out so the name is valid everywhere. */
export function defaultResultsPath(prefix: string, date = new Date()): string {
  return path.join(RESULTS_DIR, `${prefix}-${date.toISOString().replace(/:/g, "-")}.json`);
}

/** Writes the file (creating its directory); samples rounded to µs, which is all performance.now() gives across processes. */
export async function writeBenchFile(file: string, data: BenchFile): Promise<void> {
  const rounded = { ...data, results: data.results.map((r) => ({ ...r, samples: r.samples.map((x) => Math.round(x * 1000) / 1000) })) };
  await mkdir(path.dirname(path.resolve(file)), { recursive: true });
  await writeFile(file, `${JSON.stringify(rounded, null, 2)}\n`);
}

export async function readBenchFile(file: string): Promise<BenchFile> {
  const data = JSON.parse(await readFile(file, "utf8")) as Partial<BenchFile>;
  if (!Array.isArray(data.results)) throw new Error(`${file}: not a bench results file (no "results" array)`);
  return data as BenchFile;
}

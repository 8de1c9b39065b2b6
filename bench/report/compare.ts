import { columns, type BenchResult, type Summary } from "../stats.js";
import type { BenchFile } from "./bench-file.js";

/** A change counts as a regression only when it is beyond both: noise on a loaded machine is several ms and several %. */
export interface RegressionThreshold {
  /** Relative increase, in % of the old figure. */
  readonly percent: number;
  /** Absolute increase, in ms. */
  readonly ms: number;
}

export const DEFAULT_THRESHOLD: RegressionThreshold = { percent: 10, ms: 2 };

/** The statistics compared; max is shown but never judged (one slow round is not a trend). */
export const COMPARED = ["median", "p90", "max"] as const satisfies readonly (keyof Summary)[];
const JUDGED: ReadonlySet<string> = new Set(["median", "p90"]);

export interface StatChange {
  readonly stat: (typeof COMPARED)[number];
  readonly old: number;
  readonly new: number;
  readonly delta: number;
  /** NaN when the old figure is 0 or missing. */
  readonly percent: number;
  readonly regression: boolean;
  readonly improvement: boolean;
}

export interface BenchComparison {
  readonly name: string;
  readonly changes: readonly StatChange[];
  readonly regression: boolean;
}

export interface Comparison {
  readonly benchmarks: readonly BenchComparison[];
  /** Present in only one of the files: listed, not compared. */
  readonly onlyOld: readonly string[];
  readonly onlyNew: readonly string[];
  readonly regressions: number;
}

/** Compares the benchmarks present in both files, in the new file's order. */
export function compare(old: Pick<BenchFile, "results">, next: Pick<BenchFile, "results">, threshold: RegressionThreshold = DEFAULT_THRESHOLD): Comparison {
  const before = new Map(old.results.map((r) => [r.name, r]));
  const after = new Set(next.results.map((r) => r.name));
  const benchmarks = next.results.flatMap((r) => {
    const o = before.get(r.name);
    return o ? [compareOne(o, r, threshold)] : [];
  });
  return {
    benchmarks,
    onlyOld: old.results.filter((r) => !after.has(r.name)).map((r) => r.name),
    onlyNew: next.results.filter((r) => !before.has(r.name)).map((r) => r.name),
    regressions: benchmarks.filter((b) => b.regression).length,
  };
}

function compareOne(old: Pick<BenchResult, "summary">, next: Pick<BenchResult, "name" | "summary">, t: RegressionThreshold): BenchComparison {
  const changes = COMPARED.map((stat): StatChange => {
    const [a, b] = [old.summary[stat], next.summary[stat]];
    const delta = b - a;
    const percent = a > 0 ? (delta / a) * 100 : NaN;
    const beyond = (d: number, p: number) => d > t.ms && (Number.isNaN(p) || p > t.percent);
    const judged = JUDGED.has(stat) && Number.isFinite(delta);
    return { stat, old: a, new: b, delta, percent, regression: judged && beyond(delta, percent), improvement: judged && beyond(-delta, -percent) };
  });
  return { name: next.name, changes, regression: changes.some((c) => c.regression) };
}

/** The comparison as a table: one row per benchmark and statistic, regressions marked. */
export function formatComparison(c: Comparison, threshold: RegressionThreshold = DEFAULT_THRESHOLD): string {
  const rows: string[][] = [["benchmark", "stat", "old", "new", "change", "%", ""]];
  for (const b of c.benchmarks) {
    for (const [i, ch] of b.changes.entries()) {
      rows.push([
        i === 0 ? b.name : "",
        ch.stat,
        ch.old.toFixed(1),
        ch.new.toFixed(1),
        signed(ch.delta, 1),
        Number.isNaN(ch.percent) ? "-" : `${signed(ch.percent, 0)}%`,
        ch.regression ? "REGRESSION" : ch.improvement ? "better" : "",
      ]);
    }
  }
  const lines = [c.benchmarks.length > 0 ? columns(rows) : "no benchmark present in both files"];
  if (c.onlyOld.length > 0) lines.push("", `only in the old file: ${c.onlyOld.join("; ")}`);
  if (c.onlyNew.length > 0) lines.push("", `only in the new file: ${c.onlyNew.join("; ")}`);
  lines.push(
    "",
    `${c.regressions} of ${c.benchmarks.length} benchmarks regressed (median or p90 up by more than ${threshold.ms} ms and ${threshold.percent}%; max is shown, not judged)`,
  );
  return lines.join("\n");
}

function signed(x: number, digits: number): string {
  if (!Number.isFinite(x)) return "-";
  const s = x.toFixed(digits);
  return x > 0 && Number(s) !== 0 ? `+${s}` : s;
}

/** Summary statistics for a benchmark's samples (milliseconds). */
export interface Summary {
  readonly n: number;
  readonly median: number;
  readonly p90: number;
  readonly p99: number;
  readonly min: number;
  readonly max: number;
}

export function summarize(samples: readonly number[]): Summary {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? NaN;
  return { n: s.length, median: at(0.5), p90: at(0.9), p99: at(0.99), min: s[0] ?? NaN, max: s[s.length - 1] ?? NaN };
}

export interface BenchResult {
  readonly name: string;
  readonly target: string;
  readonly unit: "ms";
  readonly summary: Summary;
  /** Every sample the summary was computed from, in the order taken. */
  readonly samples: readonly number[];
  readonly settings: Record<string, unknown>;
  readonly pass: boolean | undefined;
}

export function table(results: readonly BenchResult[]): string {
  return columns([
    ["benchmark", "n", "median", "p90", "p99", "max", "target", "met"],
    ...results.map((r) => [
      r.name,
      String(r.summary.n),
      r.summary.median.toFixed(1),
      r.summary.p90.toFixed(1),
      r.summary.p99.toFixed(1),
      r.summary.max.toFixed(1),
      r.target,
      r.pass === undefined ? "-" : r.pass ? "yes" : "NO",
    ]),
  ]);
}

/** Rows of cells as left-aligned columns, the first row a header. */
export function columns(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n");
}

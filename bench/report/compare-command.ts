import { compare, DEFAULT_THRESHOLD, formatComparison } from "./compare.js";
import { readBenchFile } from "./bench-file.js";

/**
 * `--compare OLD NEW`: prints the comparison; returns the exit code, non-zero
 * only for a regression under --fail-on-regression (a comparison that ran is
 * a success even when it found one).
 */
export async function compareCommand(files: readonly [string, string], failOnRegression: boolean): Promise<number> {
  const [old, next] = await Promise.all(files.map(readBenchFile));
  process.stdout.write(`old: ${files[0]} (${old!.machine?.date ?? "?"}, ${old!.machine?.cpus ?? "?"} cpus, autonomy ${old!.machine?.autonomy ?? "?"})\n`);
  process.stdout.write(`new: ${files[1]} (${next!.machine?.date ?? "?"}, ${next!.machine?.cpus ?? "?"} cpus, autonomy ${next!.machine?.autonomy ?? "?"})\n\n`);
  const c = compare(old!, next!, DEFAULT_THRESHOLD);
  process.stdout.write(`${formatComparison(c, DEFAULT_THRESHOLD)}\n`);
  return failOnRegression && c.regressions > 0 ? 1 : 0;
}

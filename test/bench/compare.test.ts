import { describe, expect, it } from "vitest";
import { compare, formatComparison } from "../../bench/report/compare.js";
import { parseBenchArgs } from "../../bench/report/options.js";
import { summarize, type BenchResult } from "../../bench/stats.js";

const result = (name: string, samples: number[]): BenchResult => ({ name, target: "-", unit: "ms", summary: summarize(samples), samples, settings: {}, pass: undefined });
const file = (...results: BenchResult[]) => ({ results });

describe("comparing two bench results files", () => {
  it.each([
    { situation: "a median up 50% and 10 ms is a regression", old: [20, 20, 20], next: [30, 30, 30], regression: true },
    { situation: "up 50% but only 1 ms is noise, not a regression", old: [2, 2, 2], next: [3, 3, 3], regression: false },
    { situation: "up 5 ms but only 5% is noise, not a regression", old: [100, 100, 100], next: [105, 105, 105], regression: false },
    { situation: "faster is never a regression", old: [30, 30, 30], next: [10, 10, 10], regression: false },
    { situation: "one slow round moves max, which is shown but not judged", old: [10, 10, 10, 10, 10, 10, 10, 10, 10, 10], next: [10, 10, 10, 10, 10, 10, 10, 10, 10, 500], regression: false },
  ])("$situation", ({ old, next, regression }) => {
    const c = compare(file(result("crash", old)), file(result("crash", next)));
    expect(c.benchmarks).toHaveLength(1);
    expect(c.benchmarks[0]!.regression).toBe(regression);
    expect(c.regressions).toBe(regression ? 1 : 0);
  });

  it("reports the change of median, p90 and max, absolute and in percent", () => {
    const c = compare(file(result("gap", [10, 10, 20])), file(result("gap", [15, 15, 30])));
    const [median, p90, max] = c.benchmarks[0]!.changes;
    expect(median).toMatchObject({ stat: "median", old: 10, new: 15, delta: 5, percent: 50, regression: true });
    expect(p90).toMatchObject({ stat: "p90", old: 20, new: 30, delta: 10, percent: 50, regression: true });
    expect(max).toMatchObject({ stat: "max", old: 20, new: 30, regression: false });
  });

  it("a p90 regression alone marks the benchmark", () => {
    const old = [10, 10, 10, 10, 10, 10, 10, 10, 20, 20];
    const next = [10, 10, 10, 10, 10, 10, 10, 10, 40, 40];
    expect(compare(file(result("x", old)), file(result("x", next))).benchmarks[0]!.regression).toBe(true);
  });

  it("compares only benchmarks present in both files and lists the others", () => {
    const c = compare(file(result("kept", [1]), result("removed", [1])), file(result("added", [1]), result("kept", [1])));
    expect(c.benchmarks.map((b) => b.name)).toEqual(["kept"]);
    expect(c.onlyOld).toEqual(["removed"]);
    expect(c.onlyNew).toEqual(["added"]);
  });

  it("an old figure of 0 compares on the absolute change alone", () => {
    const c = compare(file(result("z", [0, 0])), file(result("z", [5, 5])));
    expect(c.benchmarks[0]!.changes[0]!.percent).toBeNaN();
    expect(c.benchmarks[0]!.regression).toBe(true);
  });

  it("prints one line per statistic with the regression marked and a closing count", () => {
    const text = formatComparison(compare(file(result("crash", [20, 20])), file(result("crash", [30, 30]))));
    expect(text).toMatch(/crash\s+median\s+20\.0\s+30\.0\s+\+10\.0\s+\+50%\s+REGRESSION/);
    expect(text).toContain("1 of 1 benchmarks regressed");
  });
});

describe("bench command-line flags", () => {
  it("reads --compare with its two files and --fail-on-regression", () => {
    expect(parseBenchArgs(["--compare", "a.json", "b.json", "--fail-on-regression"])).toMatchObject({ compare: ["a.json", "b.json"], failOnRegression: true });
  });

  it("reads --quick and --out", () => {
    expect(parseBenchArgs(["--quick", "--out", "x.json"])).toMatchObject({ quick: true, out: "x.json" });
  });

  it.each([[["--compare", "a.json"]], [["--out"]], [["--qiuck"]]])("refuses %j rather than run a long bench", (argv) => {
    expect(() => parseBenchArgs(argv)).toThrow();
  });
});

import { existsSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { runChaos } from "../../chaos/harness.js";
import type { FaultKind } from "../../chaos/faults.js";

function isGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch {
    return true;
  }
}

// The CI run: a fixed seed, about a minute end to end, real PostgreSQL,
// coordinator and agents. A violation here is a regression in the product
// (or the harness), and the history file says which write or sample broke it.
describe("a short chaos run (seed 11, 30 s of faults)", () => {
  it("injects faults of several kinds and finds no violation", { timeout: 240_000 }, async () => {
    const out = path.join(os.tmpdir(), `chaos-ci-${process.pid}.json`);
    const faults: FaultKind[] = ["kill-leader", "stop-leader", "cut-agent-db", "db-restart-immediate", "slow-leader", "rogue-stream", "forged-report", "delay-agent-coordinator", "kill-coordinator"];
    const lines: string[] = [];
    const run = await runChaos({ seed: 11, durationMs: 30_000, faults, nodes: 3, coordinators: 3, slowWritesMs: 0, out, keep: false, verbose: false }, (l) => lines.push(l));
    try {
      if (run.summary.violations > 0) console.error(run.report);
      expect(run.result.violations).toEqual([]);
      const kinds = Object.keys(run.summary.faultsByKind);
      expect(kinds.length).toBeGreaterThanOrEqual(4);
      expect(run.summary.writes.acknowledged).toBeGreaterThan(100);
      expect(run.summary.convergedAfterMs).toBeLessThanOrEqual(run.history.convergenceBoundMs);
      expect(run.report).toMatch(/violations: 0$/);
      const saved = JSON.parse(readFileSync(out, "utf8")) as { history: { seed: number; writes: unknown[] } };
      expect(saved.history.seed).toBe(11);
      expect(saved.history.writes.length).toBe(run.summary.writes.attempted);
      expect(run.pids.length).toBeGreaterThanOrEqual(5);
      expect(run.pids.filter((pid) => !isGone(pid))).toEqual([]);
    } finally {
      if (existsSync(out)) rmSync(out);
    }
  });
});

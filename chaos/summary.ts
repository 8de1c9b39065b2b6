// The run's summary: faults by kind, writes by outcome, leader changes,
// unavailability windows and the violations, as a table for stdout.

import type { CheckResult } from "./checker.js";
import type { ChaosHistory } from "./history.js";
import { SAMPLE_INTERVAL_MS } from "./sampler.js";

export interface ChaosSummary {
  readonly faultsByKind: Record<string, number>;
  readonly faultsSkipped: number;
  readonly writes: { attempted: number; acknowledged: number; rejectedStale: number; failed: number; lostToRpo: number };
  readonly leaderChanges: number;
  readonly unavailability: { windows: number; p50Ms: number; maxMs: number };
  readonly convergedAfterMs: number | undefined;
  readonly violations: number;
}

export function summarize(h: ChaosHistory, result: CheckResult): ChaosSummary {
  const faultsByKind: Record<string, number> = {};
  for (const f of h.faults) if (f.injected) faultsByKind[f.kind] = (faultsByKind[f.kind] ?? 0) + 1;
  const authoritative = h.databases.find((d) => d.authoritative);
  const windows = unavailableWindows(h);
  const sorted = [...windows].sort((a, b) => a - b);
  return {
    faultsByKind,
    faultsSkipped: h.faults.filter((f) => !f.injected).length,
    writes: {
      attempted: h.writes.length,
      acknowledged: h.writes.filter((w) => w.outcome === "ack").length,
      rejectedStale: h.writes.filter((w) => w.outcome === "stale").length,
      failed: h.writes.filter((w) => w.outcome === "error").length,
      lostToRpo: result.lostToRpo,
    },
    leaderChanges: Math.max(0, (authoritative?.epochs.length ?? 0) - 1),
    unavailability: { windows: windows.length, p50Ms: sorted[Math.floor((sorted.length - 1) / 2)] ?? 0, maxMs: sorted[sorted.length - 1] ?? 0 },
    convergedAfterMs: result.convergedAfterMs,
    violations: result.violations.length,
  };
}

/** Stretches of sampling ticks (after the first leader) in which no node answered Write-Ready. */
export function unavailableWindows(h: ChaosHistory): number[] {
  const readyTicks = new Set(h.samples.filter((s) => s.ready).map((s) => s.tick));
  if (readyTicks.size === 0) return [];
  const first = Math.min(...readyTicks);
  const last = Math.max(...h.samples.map((s) => s.tick));
  const windows: number[] = [];
  let run = 0;
  for (let t = first; t <= last; t++) {
    if (readyTicks.has(t)) {
      if (run > 0) windows.push(run * SAMPLE_INTERVAL_MS);
      run = 0;
    } else run++;
  }
  if (run > 0) windows.push(run * SAMPLE_INTERVAL_MS);
  return windows;
}

export function formatSummary(h: ChaosHistory, s: ChaosSummary, result: CheckResult, historyFile: string): string {
  const lines: string[] = [];
  lines.push(`chaos seed ${h.seed}, ${h.durationMs / 1000}s of faults, ${h.nodes.length} agents${h.slowWritesMs ? `, slow writes ${h.slowWritesMs}ms` : ""}`);
  lines.push("");
  lines.push("faults injected");
  for (const [kind, n] of Object.entries(s.faultsByKind).sort()) lines.push(`  ${kind.padEnd(26)}${String(n).padStart(4)}`);
  if (s.faultsSkipped) lines.push(`  ${"(not injectable, skipped)".padEnd(26)}${String(s.faultsSkipped).padStart(4)}`);
  lines.push("");
  lines.push("writes");
  lines.push(`  attempted      ${s.writes.attempted}`);
  lines.push(`  acknowledged   ${s.writes.acknowledged}`);
  lines.push(`  rejected       ${s.writes.rejectedStale} (stale epoch, AH001)`);
  lines.push(`  failed         ${s.writes.failed} (connection, timeout, server down)`);
  lines.push(`  lost to RPO    ${s.writes.lostToRpo}`);
  lines.push("");
  lines.push(`leader changes   ${s.leaderChanges}`);
  lines.push(`unavailability   ${s.unavailability.windows} windows, p50 ${s.unavailability.p50Ms}ms, max ${s.unavailability.maxMs}ms`);
  lines.push(`converged        ${s.convergedAfterMs === undefined ? "never" : `${s.convergedAfterMs}ms after the last fault (bound ${h.convergenceBoundMs}ms)`}`);
  lines.push(`history          ${historyFile}`);
  lines.push("");
  for (const v of result.violations) {
    lines.push(`VIOLATION ${v.invariant}: ${v.message}`);
    lines.push(`  evidence: ${JSON.stringify(v.evidence)}`);
  }
  lines.push(`violations: ${s.violations}`);
  return lines.join("\n");
}

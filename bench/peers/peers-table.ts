import { columns, type BenchResult } from "../stats.js";

/** One system's two figures; `ours` marks our rows (the numerators of the ratios). */
export interface PeerRow {
  readonly system: string;
  readonly crash: BenchResult;
  /** Absent when another row carries the same figure (ours: one switchover, two crash modes). */
  readonly switchover?: BenchResult;
  readonly caveat: string;
  readonly ours?: "crash" | "crash-alone";
}

const ms = (x: number) => (Number.isFinite(x) ? (x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(1)} ms`) : "-");

/** ours ÷ theirs, with how many times faster (or slower) that is. */
export function ratio(ours: number, theirs: number): string {
  if (!Number.isFinite(ours) || !Number.isFinite(theirs) || ours <= 0 || theirs <= 0) return "-";
  const r = ours / theirs;
  return r <= 1 ? `${r.toFixed(r < 0.01 ? 4 : 2)} (${(1 / r).toFixed(1)}× faster)` : `${r.toFixed(2)} (${r.toFixed(1)}× slower)`;
}

/** The figures of every system, then our ratio (medians) to each. */
export function peersTable(rows: readonly PeerRow[]): string {
  const figures = columns([
    ["system", "crash n", "median", "p90", "max", "switchover gap n", "median", "p90", "max", "note"],
    ...rows.map((r) => [
      r.system,
      String(r.crash.summary.n),
      ms(r.crash.summary.median),
      ms(r.crash.summary.p90),
      ms(r.crash.summary.max),
      r.switchover ? String(r.switchover.summary.n) : "",
      r.switchover ? ms(r.switchover.summary.median) : "(above)",
      r.switchover ? ms(r.switchover.summary.p90) : "",
      r.switchover ? ms(r.switchover.summary.max) : "",
      r.caveat,
    ]),
  ]);
  const coordinated = rows.find((r) => r.ours === "crash");
  const alone = rows.find((r) => r.ours === "crash-alone");
  if (!coordinated && !alone) return `${figures}\n\n(no figures of ours: no ratios)`;
  const oursSwitchover = (coordinated?.switchover ?? alone?.switchover)?.summary.median ?? NaN;
  const ratios = columns([
    ["ours ÷ system (medians)", "crash, with a coordinator", "crash, no coordinator", "switchover write gap"],
    ...rows
      .filter((r) => !r.ours)
      .map((r) => [
        r.system,
        ratio(coordinated?.crash.summary.median ?? NaN, r.crash.summary.median),
        ratio(alone?.crash.summary.median ?? NaN, r.crash.summary.median),
        ratio(oursSwitchover, r.switchover?.summary.median ?? NaN),
      ]),
  ]);
  return [
    figures,
    "",
    ratios,
    "",
    "crash: SIGKILL of the leader's process → the new leader known (ours: Write-Ready on a WatchLeader stream; floor, etcd3: its 'elected' over IPC;",
    "       Patroni: the first write committed on the promoted server, since Patroni's failover includes promoting PostgreSQL).",
    "switchover: the write gap, last write committed by the old leader → first by the new one, with each node's application writing back to back.",
  ].join("\n");
}

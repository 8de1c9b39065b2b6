// The fault schedule: a pure function of (seed, duration, fault kinds,
// nodes), printed at start so a seed reproduces the same faults at the same
// offsets. Faults run one after another with a gap, so each one's effect can
// be told apart in the history; the kinds are drawn from a seeded shuffle,
// cycled, so a run covers as many kinds as its length allows.

import type { FaultKind, Role } from "./faults.js";
import { seededRng, type Rng } from "./rng.js";

export type Direction = "both" | "to-server" | "from-server";

export interface ScheduledFault {
  readonly index: number;
  readonly kind: FaultKind;
  /** Offset from the start of the fault phase. */
  readonly atMs: number;
  /** How long the fault lasts before it is healed (0 for one-shot faults). */
  readonly durationMs: number;
  /** Which agent, for faults that act on one. */
  readonly role?: Role;
  /** For network faults. */
  readonly direction?: Direction;
  /** For delay faults and slow writes. */
  readonly delayMs?: number;
  /** For follower faults: which of the followers (in node order, counting from 0). */
  readonly follower?: number;
}

export interface ScheduleInput {
  readonly seed: number;
  readonly durationMs: number;
  readonly faults: readonly FaultKind[];
  readonly nodes: number;
}

/** Faults start after this much calm, so the cluster has a leader and the workload writes. */
export const LEAD_IN_MS = 2_000;
const GAP_MIN_MS = 1_000;
const GAP_MAX_MS = 3_000;

/** Time a fault needs after it is healed before the next may start (restarts, promotion, zombie). */
const SETTLE_MS: Partial<Record<FaultKind, number>> = {
  "db-restart-fast": 3_000,
  "db-restart-immediate": 4_000,
  "db-promote": 6_000,
  "kill-coordinator": 1_000,
};

export function buildSchedule(input: ScheduleInput): ScheduledFault[] {
  const rng = seededRng(input.seed);
  const faults: ScheduledFault[] = [];
  if (input.faults.length === 0) return faults;
  let deck: FaultKind[] = [];
  let promoted = false;
  let t = LEAD_IN_MS;
  for (let guard = 0; guard < 10_000; guard++) {
    if (deck.length === 0) deck = shuffle(rng, input.faults);
    const kind = deck.shift()!;
    // A promotion leaves no standby behind, so it happens at most once a run.
    if (kind === "db-promote" && promoted) {
      if (input.faults.every((k) => k === "db-promote")) break;
      continue;
    }
    const drawn = draw(rng, kind, faults.length, t);
    // Which follower is not drawn from the PRNG, so adding nodes keeps every other choice of a seed.
    const fault = drawn.role === "follower" ? { ...drawn, follower: drawn.index % Math.max(1, input.nodes - 1) } : drawn;
    const end = fault.atMs + fault.durationMs + (SETTLE_MS[kind] ?? 0);
    if (end > input.durationMs) {
      // The window is nearly full: end here if even the shortest slot cannot fit.
      if (input.durationMs - t < 3_000) break;
      continue;
    }
    if (kind === "db-promote") promoted = true;
    faults.push(fault);
    t = end + rng.int(GAP_MIN_MS, GAP_MAX_MS);
  }
  return faults;
}

function draw(rng: Rng, kind: FaultKind, index: number, atMs: number): ScheduledFault {
  const base = { index, kind, atMs };
  const role = (): Role => (rng.chance(0.6) ? "leader" : "follower");
  const direction = (): Direction => rng.pick<Direction>(["both", "both", "to-server", "from-server"]);
  switch (kind) {
    case "kill-leader":
    case "stop-leader":
      return { ...base, role: "leader", durationMs: rng.int(1_000, 5_000) };
    case "kill-follower":
    case "stop-follower":
      return { ...base, role: "follower", durationMs: rng.int(1_000, 5_000) };
    case "kill-coordinator":
    case "stop-coordinator":
      return { ...base, durationMs: rng.int(1_000, 5_000) };
    case "cut-agent-db":
    case "cut-agent-coordinator":
      return { ...base, role: role(), direction: direction(), durationMs: rng.int(1_000, 6_000) };
    case "delay-agent-db":
    case "delay-agent-coordinator":
      return { ...base, role: role(), direction: direction(), durationMs: rng.int(2_000, 6_000), delayMs: rng.int(50, 800) };
    case "db-restart-fast":
    case "db-restart-immediate":
      return { ...base, durationMs: 0 };
    case "db-promote":
      // durationMs: how long the old primary stays down before it returns as a zombie.
      return { ...base, durationMs: rng.int(2_000, 5_000) };
    case "db-lock-ha-tables":
    case "db-pause-postmaster":
      return { ...base, durationMs: rng.int(1_000, 4_000) };
    case "slow-leader":
      return { ...base, role: "leader", durationMs: rng.int(1_500, 4_000) };
    case "slow-writes":
      return { ...base, durationMs: rng.int(3_000, 8_000), delayMs: rng.int(100, 600) };
    case "rogue-stream":
    case "forged-report":
      return { ...base, durationMs: 2_000 };
  }
}

function shuffle<T>(rng: Rng, items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** One line per fault, as printed at start. */
export function describeSchedule(faults: readonly ScheduledFault[]): string {
  return faults
    .map((f) => {
      const parts = [`+${(f.atMs / 1000).toFixed(1)}s`, f.kind];
      if (f.role) parts.push(f.follower === undefined ? `role=${f.role}` : `role=follower#${f.follower}`);
      if (f.direction) parts.push(`direction=${f.direction}`);
      if (f.delayMs !== undefined) parts.push(`delay=${f.delayMs}ms`);
      if (f.durationMs > 0) parts.push(`for ${(f.durationMs / 1000).toFixed(1)}s`);
      return `  #${f.index} ${parts.join(" ")}`;
    })
    .join("\n");
}

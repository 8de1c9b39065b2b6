import type { NodeRole } from "../../core/model.js";

/** The current term of a leader, as far as this node has confirmed it. */
export interface Term {
  readonly epoch: number;
  readonly acquiredAt: Date;
  /** Monotonic time at which the last confirmed heartbeat was sent. */
  readonly confirmedAtMs: number;
  /** leadership_state.heartbeat_at as of that heartbeat (database time). */
  readonly heartbeatAt: Date | undefined;
}

export interface ReadinessInput {
  readonly term: Term | undefined;
  readonly sessionAlive: boolean;
  readonly nowMs: number;
  readonly leaseMs: number;
  readonly syncReplicas: number;
  readonly minSyncReplicas: number;
}

export interface Readiness {
  readonly ready: boolean;
  /** Why not, in words; empty when ready. */
  readonly reason: string;
}

/**
 * Write-Ready = the lock is held on a live session confirmed within the lease,
 * the term is leadership_state's (a heartbeat confirms both in one statement),
 * and the replication quorum is met. Judged against our own monotonic clock,
 * so authority ends at the lease deadline whatever the network says.
 */
export function writeReadiness(input: ReadinessInput): Readiness {
  const { term } = input;
  if (!term) return { ready: false, reason: "not the leader" };
  if (!input.sessionAlive) return { ready: false, reason: "lock session lost" };
  const age = input.nowMs - term.confirmedAtMs;
  if (age >= input.leaseMs) {
    return { ready: false, reason: `lock session unconfirmed for ${Math.round(age)}ms (lease ${input.leaseMs}ms): fenced` };
  }
  if (input.syncReplicas < input.minSyncReplicas) {
    return { ready: false, reason: `${input.syncReplicas} sync replicas, ${input.minSyncReplicas} required` };
  }
  return { ready: true, reason: "" };
}

export interface RoleInput {
  readonly term: Term | undefined;
  readonly sessionAlive: boolean;
  readonly held: boolean;
  readonly fenced: boolean;
}

export function roleOf(input: RoleInput): NodeRole {
  if (input.term) return "leader";
  if (input.fenced) return "fenced";
  if (!input.sessionAlive) return "disconnected";
  if (input.held) return "held";
  return "follower";
}

/** How long a follower leaves the choice to a connected coordinator before it tries a free lock itself. */
export const COORDINATED_CAMPAIGN_MS = 2_000;

/**
 * A follower's own campaign interval. While a coordinator is connected it
 * picks the successor by priority and lag (and orders it within its poll
 * interval), so the follower only tries a free lock as a slower backstop;
 * alone, it tries every --campaign-interval.
 */
export function selfCampaignIntervalMs(campaignIntervalMs: number, coordinatorConnected: boolean): number {
  return coordinatorConnected ? Math.max(campaignIntervalMs, COORDINATED_CAMPAIGN_MS) : campaignIntervalMs;
}

/** Tracks when a leader's heartbeat last moved, by our clock (not the remote timestamp). */
export interface HeartbeatWatch {
  readonly key: string;
  readonly sinceMs: number;
}

export function watchHeartbeat(previous: HeartbeatWatch | undefined, key: string, nowMs: number): HeartbeatWatch {
  return previous && previous.key === key ? previous : { key, sinceMs: nowMs };
}

/**
 * Whether a follower should end a hung leader's session: someone holds the
 * lock, it is not us, and leadership_state's heartbeat has not moved for
 * longer than takeoverAfterMs by our own clock. A leader that is merely slow
 * keeps heartbeating through its own session and is never taken over.
 */
export function shouldTakeOver(input: {
  readonly watch: HeartbeatWatch | undefined;
  readonly nowMs: number;
  readonly takeoverAfterMs: number;
  readonly lockHolder: string | undefined;
  readonly self: string;
  readonly mayLead: boolean;
}): boolean {
  if (!input.mayLead || !input.watch || input.lockHolder === undefined || input.lockHolder === input.self) return false;
  return input.nowMs - input.watch.sinceMs > input.takeoverAfterMs;
}

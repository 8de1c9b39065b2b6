/** The current term of a leader, as far as this node has confirmed it. */
export interface Term {
  readonly epoch: number;
  readonly acquiredAt: Date;
  /** Monotonic time at which the last confirmed heartbeat was sent. */
  readonly confirmedAtMs: number;
  /** leadership_state.heartbeat_at as of that heartbeat (database time). */
  readonly heartbeatAt: Date | undefined;
}

export interface Readiness {
  readonly ready: boolean;
  /** Why not, in words; empty when ready. */
  readonly reason: string;
}

export interface AuthorityInput {
  readonly term: Term | undefined;
  readonly sessionAlive: boolean;
  readonly nowMs: number;
  readonly leaseMs: number;
}

/**
 * The lease rule, the one place it is written: a term carries write authority
 * while its lock session is alive and was confirmed less than a lease ago.
 * Judged by when WE last confirmed it, on our own monotonic clock (as
 * client-go judges a lease by when it saw it renewed), never by the database's
 * timestamp, so authority ends at the lease deadline whatever the network says.
 */
export function lockAuthority(input: AuthorityInput): Readiness {
  const { term } = input;
  if (!term) return { ready: false, reason: "not the leader" };
  if (!input.sessionAlive) return { ready: false, reason: "lock session lost" };
  const age = input.nowMs - term.confirmedAtMs;
  if (age >= input.leaseMs) {
    return { ready: false, reason: `lock session unconfirmed for ${Math.round(age)}ms (lease ${input.leaseMs}ms): fenced` };
  }
  return { ready: true, reason: "" };
}

/** Milliseconds until a term's lease runs out by the rule above; 0 or less when it has. */
export function leaseLeftMs(term: Term, nowMs: number, leaseMs: number): number {
  return term.confirmedAtMs + leaseMs - nowMs;
}

export interface ReadinessInput extends AuthorityInput {
  readonly syncReplicas: number;
  readonly minSyncReplicas: number;
}

/**
 * Write-Ready = the lock is held on a live session confirmed within the lease,
 * the term is leadership_state's (a heartbeat confirms both in one statement),
 * and the replication quorum is met.
 */
export function writeReadiness(input: ReadinessInput): Readiness {
  const authority = lockAuthority(input);
  if (!authority.ready) return authority;
  if (input.syncReplicas < input.minSyncReplicas) {
    return { ready: false, reason: `${input.syncReplicas} sync replicas, ${input.minSyncReplicas} required` };
  }
  return authority;
}

/** How long a follower leaves the choice to a connected coordinator before it tries a free lock itself. */
export const COORDINATED_CAMPAIGN_MS = 2_000;

/**
 * A follower's own campaign interval while a coordinator is connected: the
 * coordinator picks the successor by priority and lag (and orders it within
 * its poll interval), so the follower only tries a free lock as a slower
 * backstop. Alone, a follower does not poll at all: it waits on the lock.
 */
export function coordinatedCampaignIntervalMs(campaignIntervalMs: number): number {
  return Math.max(campaignIntervalMs, COORDINATED_CAMPAIGN_MS);
}

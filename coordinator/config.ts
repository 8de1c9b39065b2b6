import { invalidArgument } from "../core/errors.js";
import { DEFAULT_CLUSTER_ID, validateClusterId } from "../db/identifiers.js";

/**
 * What the coordinator may do on its own and how patient it is. Validated at
 * construction with errors that name the relation that failed (client-go style).
 */
export interface CoordinatorPolicy {
  readonly clusterId: string;
  /** Order a candidate to campaign when the leader is gone. */
  readonly autoFailover: boolean;
  /** A leader whose stream AND database heartbeat are both silent this long is declared dead. */
  readonly failureTimeoutMs: number;
  /** After an automatic failover, a suspected (unconfirmed) death waits this long before another. */
  readonly failoverCooldownMs: number;
  /** Promote the highest-epoch healthy claimant when a split-brain is found. */
  readonly autoRecoverSplitBrain: boolean;
  /** How often the database truth is read. */
  readonly pollIntervalMs: number;
  /** A connected node whose last report is older than this no longer counts as alive. */
  readonly reportStaleAfterMs: number;
  readonly lagWarnSeconds: number;
  readonly lagCriticalSeconds: number;
  /**
   * A leaderless cluster whose only candidates have critical lag waits this long
   * before it accepts the least-bad one: a dead primary freezes the lag
   * measurement, and a gate that never opens leaves the cluster leaderless (patroni#3703).
   */
  readonly lagGateMaxWaitMs: number;
  /** A lock holder that leadership_state does not name counts only after this long (open_epoch follows the lock by ms). */
  readonly holderMismatchGraceMs: number;
  /** Keep the best candidate queued on the lock (Campaign with wait_ms) so a crash hands over in ms. */
  readonly designateSuccessor: boolean;
  readonly designationWaitMs: number;
  /** How long an ordered campaign may take before another is ordered. */
  readonly campaignTimeoutMs: number;
  /** Deadline for a planned failover or recovery to be confirmed. */
  readonly operationTimeoutMs: number;
  /** Deadline for an agent to ack a command. */
  readonly commandTimeoutMs: number;
  /**
   * A lock holder that no agent's report names (by backend pid) while it
   * carries the application_name of a live node is an intruder; it is ended
   * once it has been seen this long (see detect/intruder.ts for the rule).
   */
  readonly intruderGraceMs: number;
  /** A node that has not reported this long leaves the view (audited as ha.node.expired). */
  readonly nodeExpiryMs: number;
  /** At most this many distinct node ids are known at once; streams of further ids are refused. */
  readonly maxNodes: number;
  /**
   * Cold start (no leader): how long after the first report the coordinator
   * holds the nodes that report before ordering the best of them to lead
   * (0: no settle). Below the agents' 2 s startup grace, so no node's own
   * backstop campaign beats the order.
   */
  readonly settleMs: number;
  /** Nodes whose reports end the settle at once when all are in (--expect-nodes); then up to settleMaxMs. */
  readonly expectNodes: readonly string[];
  /** With expectNodes, the longest the settle waits for the missing ones. */
  readonly settleMaxMs: number;
}

export const defaultPolicy: CoordinatorPolicy = {
  clusterId: DEFAULT_CLUSTER_ID,
  autoFailover: true,
  failureTimeoutMs: 2_500,
  failoverCooldownMs: 60_000,
  autoRecoverSplitBrain: false,
  pollIntervalMs: 200,
  reportStaleAfterMs: 2_000,
  lagWarnSeconds: 5,
  lagCriticalSeconds: 10,
  lagGateMaxWaitMs: 30_000,
  holderMismatchGraceMs: 500,
  designateSuccessor: true,
  designationWaitMs: 60_000,
  campaignTimeoutMs: 5_000,
  operationTimeoutMs: 10_000,
  commandTimeoutMs: 5_000,
  intruderGraceMs: 5_000,
  nodeExpiryMs: 600_000,
  maxNodes: 64,
  settleMs: 1_500,
  expectNodes: [],
  settleMaxMs: 10_000,
};

/** Fills defaults and checks every relation; throws INVALID_ARGUMENT naming the one that failed. */
export function makePolicy(overrides: Partial<CoordinatorPolicy> = {}): CoordinatorPolicy {
  const p: CoordinatorPolicy = { ...defaultPolicy, ...overrides };
  validateClusterId(p.clusterId);
  const positive: (keyof CoordinatorPolicy)[] = [
    "failureTimeoutMs", "pollIntervalMs", "reportStaleAfterMs", "lagWarnSeconds", "lagCriticalSeconds",
    "designationWaitMs", "campaignTimeoutMs", "operationTimeoutMs", "commandTimeoutMs", "intruderGraceMs", "nodeExpiryMs",
  ];
  for (const k of positive) {
    const v = p[k] as number;
    if (!Number.isFinite(v) || v <= 0) throw invalidArgument(`${name(k)} must be greater than 0, got ${v}`);
  }
  for (const k of ["failoverCooldownMs", "lagGateMaxWaitMs", "holderMismatchGraceMs", "settleMs", "settleMaxMs"] as const) {
    if (!Number.isFinite(p[k]) || p[k] < 0) throw invalidArgument(`${name(k)} must not be negative, got ${p[k]}`);
  }
  if (p.lagCriticalSeconds <= p.lagWarnSeconds) {
    throw invalidArgument(`lag-critical (${p.lagCriticalSeconds}s) must be greater than lag-warn (${p.lagWarnSeconds}s)`);
  }
  if (p.failureTimeoutMs <= 2 * p.pollIntervalMs) {
    throw invalidArgument(
      `failure-timeout (${p.failureTimeoutMs}ms) must be greater than twice poll-interval (${p.pollIntervalMs}ms), or one slow read would look like a death`,
    );
  }
  if (p.reportStaleAfterMs > p.failureTimeoutMs) {
    throw invalidArgument(`report-stale-after (${p.reportStaleAfterMs}ms) must not exceed failure-timeout (${p.failureTimeoutMs}ms)`);
  }
  if (p.intruderGraceMs <= p.holderMismatchGraceMs) {
    throw invalidArgument(
      `intruder-grace (${p.intruderGraceMs}ms) must be greater than holder-mismatch-grace (${p.holderMismatchGraceMs}ms), or an agent's own lock grant could be ended before its report names it`,
    );
  }
  if (p.intruderGraceMs < p.reportStaleAfterMs) {
    throw invalidArgument(
      `intruder-grace (${p.intruderGraceMs}ms) must be at least report-stale-after (${p.reportStaleAfterMs}ms), so every live agent has reported several times before a lock holder is ended as an intruder`,
    );
  }
  if (p.nodeExpiryMs <= p.failureTimeoutMs) {
    throw invalidArgument(
      `node-expiry (${p.nodeExpiryMs}ms) must be greater than failure-timeout (${p.failureTimeoutMs}ms, itself at least report-stale-after), or a hung leader could leave the view before it is judged`,
    );
  }
  if (!Number.isInteger(p.maxNodes) || p.maxNodes < 1) throw invalidArgument(`max-nodes must be a whole number of at least 1, got ${p.maxNodes}`);
  return p;
}

const name = (k: string) => k.replace(/Ms$|Seconds$/, "").replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

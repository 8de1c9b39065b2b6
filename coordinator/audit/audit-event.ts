/**
 * One audit event: one JSON line of <audit-dir>/audit.jsonl. Field names are
 * the file format (snake_case), shared with `autonomy audit query`, which
 * reads the files directly.
 */
export interface AuditEvent {
  readonly id: string;
  /** ISO-8601 UTC. */
  readonly time: string;
  /** Broad area, e.g. "ha". */
  readonly category: string;
  /** Exact kind, e.g. "ha.failover.completed". */
  readonly type: string;
  /** The operator who asked; "system" for automatic actions. */
  readonly operator: string;
  readonly reason: string;
  readonly request_id: string;
  /** The caller as identified by call metadata and peer address. */
  readonly caller: string;
  readonly node_id: string;
  readonly epoch: number;
  readonly cluster_id: string;
  readonly message: string;
  /** The facts the action or finding was based on. */
  readonly evidence: Record<string, unknown>;
}

/** The event types this product writes. */
export const AuditType = {
  FailoverCompleted: "ha.failover.completed",
  FailoverFailed: "ha.failover.failed",
  FailoverAutomatic: "ha.failover.automatic",
  SplitBrainDetected: "ha.split_brain.detected",
  SplitBrainResolved: "ha.split_brain.resolved",
  SplitBrainRecovered: "ha.split_brain.recovered",
  MaintenancePaused: "ha.maintenance.paused",
  MaintenanceResumed: "ha.maintenance.resumed",
  LeaderChanged: "ha.leader.changed",
  LeaderLost: "ha.leader.lost",
  /** Recorded before a split-brain recovery acts: no recovery runs unaudited. */
  SplitBrainRecoveryStarted: "ha.split_brain.recovery_started",
  /** A session holds the leader lock that no agent's report names. */
  IntruderDetected: "ha.intruder.detected",
  IntruderTerminated: "ha.intruder.terminated",
  /** A second stream for a node id that already has a live one. */
  NodeStreamRefused: "ha.node.stream_refused",
  NodeExpired: "ha.node.expired",
  /** A node's --lease is not below the coordinator's --failure-timeout (detect/lease.ts). */
  NodeLeaseTooLong: "ha.node.lease_too_long",
  /** manual-reconcile's hold began: nobody campaigns until a failover names a node. */
  ReconcileHoldSet: "ha.reconcile_hold.set",
  /** The manual-reconcile hold ended (a failover or promote-leader named a leader). */
  ReconcileHoldCleared: "ha.reconcile_hold.cleared",
  /** A promoted server is the primary now; evidence carries the measured RTO (seed 004 §5). */
  DatabasePromoted: "ha.database.promoted",
  /** A primary that a promotion left behind was fenced (and its nodes held). */
  DatabaseContained: "ha.database.contained",
  /** A node on a superseded primary was held until it reaches the authoritative one. */
  NodeHeldOnSupersededDatabase: "ha.node.held_superseded_database",
} as const;

export const AUDIT_FILE = "audit.jsonl";

/** Filters of QueryAudit and `autonomy audit query`. */
export interface AuditQuery {
  readonly category?: string;
  readonly type?: string;
  readonly since?: Date;
  readonly clusterId?: string;
  /** At most this many of the newest matches; 0 or undefined means 100. */
  readonly limit?: number;
}

export const DEFAULT_AUDIT_LIMIT = 100;

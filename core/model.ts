import type { LockDatabaseIdentity } from "./lock-database.js";

/**
 * Domain types shared by the agent, the coordinator and the CLI. Wire types
 * from gen/ are converted to and from these at the RPC edge (rpc/wire.ts).
 */

export type NodeRole = "leader" | "follower" | "held" | "fenced" | "disconnected" | "unknown";
export type LagStatus = "unknown" | "ok" | "warn" | "critical";

export interface LeaderView {
  /** Empty string when nobody holds write authority. */
  readonly holderId: string;
  readonly epoch: number;
  readonly acquiredAt: Date | undefined;
  readonly writeReady: boolean;
  readonly heartbeatAt: Date | undefined;
}

export const noLeader: LeaderView = { holderId: "", epoch: 0, acquiredAt: undefined, writeReady: false, heartbeatAt: undefined };

export interface ReplicaView {
  readonly applicationName: string;
  readonly clientAddr: string;
  readonly state: string;
  readonly syncState: string;
  readonly writeLagSeconds: number;
  readonly replayLagSeconds: number;
  readonly replayLagBytes: number;
}

export interface ReplicationView {
  readonly lagStatus: LagStatus;
  readonly maxWriteLagSeconds: number;
  readonly maxReplayLagSeconds: number;
  readonly replicaCount: number;
  readonly syncReplicaCount: number;
  readonly replicas: readonly ReplicaView[];
  readonly error: string;
}

export const unknownReplication: ReplicationView = {
  lagStatus: "unknown",
  maxWriteLagSeconds: 0,
  maxReplayLagSeconds: 0,
  replicaCount: 0,
  syncReplicaCount: 0,
  replicas: [],
  error: "",
};

export interface LocalDatabaseView {
  readonly reachable: boolean;
  readonly inRecovery: boolean;
  readonly timeline: number;
  readonly receiveLsn: string;
  readonly replayLsn: string;
  readonly replayLagSeconds: number;
  readonly lagStatus: LagStatus;
  readonly systemIdentifier: string;
  readonly streaming: boolean;
  readonly error: string;
}

/** What one node reports about itself. The node id comes from call metadata. */
export interface NodeReport {
  readonly nodeId: string;
  readonly sequence: number;
  readonly clusterId: string;
  readonly sentAt: Date;
  readonly role: NodeRole;
  readonly sessionLockHeld: boolean;
  readonly writeReady: boolean;
  readonly writeReadyReason: string;
  /** The epoch this node holds; 0 when none. */
  readonly epoch: number;
  /** leadership_state as this node last read it. */
  readonly observedLeader: LeaderView;
  readonly highestEpochSeen: number;
  readonly lockBackendPid: number;
  readonly lockConfirmedAt: Date | undefined;
  readonly priority: number;
  readonly nofailover: boolean;
  readonly replication: ReplicationView;
  readonly localDatabase: LocalDatabaseView | undefined;
  /** Display only ("<sysid>/tl<timeline>"): compare lockDatabase, never this text. */
  readonly lockDatabaseId: string;
  /** The server holding the node's lock, once the node has read it. */
  readonly lockDatabase: LockDatabaseIdentity | undefined;
  readonly lockDatabaseWritable: boolean;
  /** The node's --region; empty when not set. */
  readonly region: string;
  /** The agent's --lease (ms); 0 when not reported (an agent older than the field). */
  readonly leaseMs: number;
  readonly endpoint: string;
  readonly databaseError: string;
  readonly version: string;
  /** Sync replicas this node requires for Write-Ready. */
  readonly minSyncReplicas: number;
  /** Ordered to hold: does not campaign until released, whatever its role. */
  readonly held: boolean;
}

export type CommandAction =
  | { readonly kind: "resign"; readonly hold: boolean }
  | { readonly kind: "campaign"; readonly epochFloor: number; readonly waitMs: number }
  | { readonly kind: "hold" }
  | { readonly kind: "release" };

/** An order to one node, guarded by the epoch it applies to. */
export interface NodeCommand {
  readonly commandId: string;
  readonly epoch: number;
  readonly action: CommandAction;
  readonly reason: string;
  /** The sending coordinator's term; agents check it against the lock database (0: none). */
  readonly coordinatorTerm?: number;
}

export type CommandResult = "done" | "refused" | "failed";

export interface CommandOutcome {
  readonly commandId: string;
  readonly result: CommandResult;
  readonly message: string;
  /** The epoch the node holds after the command; 0 when none. */
  readonly epoch: number;
  readonly resignedAt: Date | undefined;
}

/** The one lag classifier lives in core/lag.ts; re-exported for existing importers. */
export { classifyLag } from "./lag.js";

import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import {
  LagStatus as WireLag,
  NodeRole as WireRole,
  type LeaderInfo,
  type LocalDatabaseStatus,
  type ReplicationStatus,
  LeaderInfoSchema,
  ReplicationStatusSchema,
  LocalDatabaseStatusSchema,
} from "../gen/autonomy/ha/v1/types_pb.js";
import {
  CommandResult as WireResult,
  type AgentReport,
  type Command,
  type CommandAck,
  AgentReportSchema,
  CommandSchema,
  CommandAckSchema,
} from "../gen/autonomy/ha/v1/agent_pb.js";
import type { NodeStatusSchema } from "../gen/autonomy/ha/v1/admin_pb.js";
import { invalidArgument } from "../core/errors.js";
import type { LockDatabaseIdentity } from "../core/lock-database.js";
import type {
  CommandOutcome,
  CommandResult,
  LagStatus,
  LeaderView,
  LocalDatabaseView,
  NodeCommand,
  NodeReport,
  NodeRole,
  ReplicationView,
} from "../core/model.js";

/* Conversions between wire messages (gen/) and domain values (core/model.ts). */

export const ts = (d: Date | undefined): Timestamp | undefined => (d ? timestampFromDate(d) : undefined);
export const date = (t: Timestamp | undefined): Date | undefined => (t ? timestampDate(t) : undefined);
const big = (n: number): bigint => BigInt(Math.max(0, Math.trunc(n)));

/**
 * The domain value of a wire enum from a peer, or INVALID_ARGUMENT naming the
 * field and the values it may take: protobuf keeps numbers it does not know,
 * so a buggy or hostile peer can send any int32.
 */
function strictEnum<D extends string>(pairs: readonly (readonly [D, number])[], wire: number, field: string, names: Record<number, string>): D {
  const hit = pairs.find(([, w]) => w === wire);
  if (hit) return hit[0];
  const allowed = pairs.map(([d, w]) => `${w} (${names[w] ?? d})`).join(", ");
  throw invalidArgument(`${field}: unknown value ${wire}; allowed: ${allowed}`);
}

/** A count or priority from a peer: a whole number from 0 up, or INVALID_ARGUMENT naming the field. */
function nonNegative(n: number, field: string): number {
  if (!Number.isInteger(n) || n < 0) throw invalidArgument(`${field}: ${n} is negative; allowed: 0 or more`);
  return n;
}

const roles: [NodeRole, WireRole][] = [
  ["unknown", WireRole.UNSPECIFIED],
  ["leader", WireRole.LEADER],
  ["follower", WireRole.FOLLOWER],
  ["held", WireRole.HELD],
  ["fenced", WireRole.FENCED],
  ["disconnected", WireRole.DISCONNECTED],
];
export const roleToWire = (r: NodeRole): WireRole => roles.find(([d]) => d === r)?.[1] ?? WireRole.UNSPECIFIED;
export const roleFromWire = (r: WireRole): NodeRole => roles.find(([, w]) => w === r)?.[0] ?? "unknown";

const lags: [LagStatus, WireLag][] = [
  ["unknown", WireLag.UNSPECIFIED],
  ["ok", WireLag.OK],
  ["warn", WireLag.WARN],
  ["critical", WireLag.CRITICAL],
];
export const lagToWire = (l: LagStatus): WireLag => lags.find(([d]) => d === l)?.[1] ?? WireLag.UNSPECIFIED;
export const lagFromWire = (l: WireLag): LagStatus => lags.find(([, w]) => w === l)?.[0] ?? "unknown";

export function leaderToWire(l: LeaderView): LeaderInfo {
  return create(LeaderInfoSchema, {
    holderId: l.holderId,
    epoch: big(l.epoch),
    acquiredAt: ts(l.acquiredAt),
    writeReady: l.writeReady,
    heartbeatAt: ts(l.heartbeatAt),
  });
}

export function leaderFromWire(l: LeaderInfo | undefined): LeaderView {
  return {
    holderId: l?.holderId ?? "",
    epoch: Number(l?.epoch ?? 0n),
    acquiredAt: date(l?.acquiredAt),
    writeReady: l?.writeReady ?? false,
    heartbeatAt: date(l?.heartbeatAt),
  };
}

export function replicationToWire(r: ReplicationView): ReplicationStatus {
  return create(ReplicationStatusSchema, {
    lagStatus: lagToWire(r.lagStatus),
    maxWriteLagSeconds: r.maxWriteLagSeconds,
    maxReplayLagSeconds: r.maxReplayLagSeconds,
    replicaCount: r.replicaCount,
    syncReplicaCount: r.syncReplicaCount,
    replicas: r.replicas.map((x) => ({ ...x, replayLagBytes: big(x.replayLagBytes) })),
    error: r.error,
  });
}

export function replicationFromWire(r: ReplicationStatus | undefined): ReplicationView {
  return {
    lagStatus: strictEnum(lags, r?.lagStatus ?? WireLag.UNSPECIFIED, "replication.lag_status", WireLag),
    maxWriteLagSeconds: r?.maxWriteLagSeconds ?? 0,
    maxReplayLagSeconds: r?.maxReplayLagSeconds ?? 0,
    replicaCount: r?.replicaCount ?? 0,
    syncReplicaCount: r?.syncReplicaCount ?? 0,
    replicas: (r?.replicas ?? []).map((x) => ({
      applicationName: x.applicationName,
      clientAddr: x.clientAddr,
      state: x.state,
      syncState: x.syncState,
      writeLagSeconds: x.writeLagSeconds,
      replayLagSeconds: x.replayLagSeconds,
      replayLagBytes: Number(x.replayLagBytes),
    })),
    error: r?.error ?? "",
  };
}

function localToWire(l: LocalDatabaseView): LocalDatabaseStatus {
  return create(LocalDatabaseStatusSchema, { ...l, lagStatus: lagToWire(l.lagStatus) });
}

function localFromWire(l: LocalDatabaseStatus | undefined): LocalDatabaseView | undefined {
  if (!l) return undefined;
  return {
    reachable: l.reachable,
    inRecovery: l.inRecovery,
    timeline: l.timeline,
    receiveLsn: l.receiveLsn,
    replayLsn: l.replayLsn,
    replayLagSeconds: l.replayLagSeconds,
    lagStatus: strictEnum(lags, l.lagStatus, "local_database.lag_status", WireLag),
    systemIdentifier: l.systemIdentifier,
    streaming: l.streaming,
    error: l.error,
  };
}

/** A node's row in GetStatus, from its last report. */
export function nodeStatusToWire(r: NodeReport, connected: boolean): MessageInitShape<typeof NodeStatusSchema> {
  return {
    nodeId: r.nodeId,
    role: roleToWire(connected ? r.role : "disconnected"),
    connected,
    sessionLockHeld: r.sessionLockHeld,
    writeReady: r.writeReady,
    epoch: big(r.epoch),
    priority: r.priority,
    nofailover: r.nofailover,
    lagStatus: lagToWire(r.localDatabase?.lagStatus ?? "unknown"),
    replayLagSeconds: r.localDatabase?.replayLagSeconds ?? 0,
    lastReportAt: ts(r.sentAt.getTime() > 0 ? r.sentAt : undefined),
    endpoint: r.endpoint,
    writeReadyReason: r.writeReadyReason,
    lockDatabaseId: r.lockDatabaseId,
  };
}

/** The report without its node id: identity travels in metadata. */
export function reportToWire(r: Omit<NodeReport, "nodeId">): AgentReport {
  return create(AgentReportSchema, {
    sequence: big(r.sequence),
    clusterId: r.clusterId,
    sentAt: ts(r.sentAt),
    role: roleToWire(r.role),
    sessionLockHeld: r.sessionLockHeld,
    writeReady: r.writeReady,
    writeReadyReason: r.writeReadyReason,
    epoch: big(r.epoch),
    observedLeader: leaderToWire(r.observedLeader),
    highestEpochSeen: big(r.highestEpochSeen),
    lockBackendPid: r.lockBackendPid,
    lockConfirmedAt: ts(r.lockConfirmedAt),
    priority: r.priority,
    nofailover: r.nofailover,
    replication: replicationToWire(r.replication),
    localDatabase: r.localDatabase ? localToWire(r.localDatabase) : undefined,
    lockDatabaseId: r.lockDatabaseId,
    lockDatabaseSystemIdentifier: r.lockDatabase?.systemIdentifier ?? "",
    lockDatabaseTimeline: r.lockDatabase?.timeline ?? 0,
    lockDatabaseWritable: r.lockDatabaseWritable,
    endpoint: r.endpoint,
    databaseError: r.databaseError,
    version: r.version,
    minSyncReplicas: r.minSyncReplicas,
    held: r.held,
    leaseMs: r.leaseMs,
    region: r.region,
  });
}

/** Throws INVALID_ARGUMENT, naming the field, for an enum value or number no agent sends. */
export function reportFromWire(nodeId: string, r: AgentReport): NodeReport {
  return {
    nodeId,
    sequence: Number(r.sequence),
    clusterId: r.clusterId,
    sentAt: date(r.sentAt) ?? new Date(0),
    role: strictEnum(roles, r.role, "role", WireRole),
    sessionLockHeld: r.sessionLockHeld,
    writeReady: r.writeReady,
    writeReadyReason: r.writeReadyReason,
    epoch: Number(r.epoch),
    observedLeader: leaderFromWire(r.observedLeader),
    highestEpochSeen: Number(r.highestEpochSeen),
    lockBackendPid: nonNegative(r.lockBackendPid, "lock_backend_pid"),
    lockConfirmedAt: date(r.lockConfirmedAt),
    priority: nonNegative(r.priority, "priority"),
    nofailover: r.nofailover,
    replication: replicationFromWire(r.replication),
    localDatabase: localFromWire(r.localDatabase),
    lockDatabaseId: r.lockDatabaseId,
    lockDatabase: lockDatabaseFromWire(r.lockDatabaseSystemIdentifier, r.lockDatabaseTimeline),
    lockDatabaseWritable: r.lockDatabaseWritable,
    endpoint: r.endpoint,
    databaseError: r.databaseError,
    version: r.version,
    minSyncReplicas: r.minSyncReplicas,
    held: r.held,
    leaseMs: r.leaseMs,
    region: r.region,
  };
}

/**
 * The typed lock database identity. An agent older than these fields sends
 * none: the identity is then unknown (the deprecated display text is never
 * parsed), and the coordinator treats the node's database as unconfirmed.
 */
function lockDatabaseFromWire(systemIdentifier: string, timeline: number): LockDatabaseIdentity | undefined {
  if (systemIdentifier === "") return undefined;
  if (!/^[0-9]{1,20}$/.test(systemIdentifier)) {
    throw invalidArgument(`lock_database_system_identifier: ${JSON.stringify(systemIdentifier.slice(0, 40))} is not a decimal system identifier`);
  }
  return { systemIdentifier, timeline };
}

export function commandToWire(c: NodeCommand): MessageInitShape<typeof CommandSchema> {
  const base = { commandId: c.commandId, epoch: big(c.epoch), reason: c.reason, coordinatorTerm: big(c.coordinatorTerm ?? 0) };
  switch (c.action.kind) {
    case "resign":
      return { ...base, action: { case: "resign", value: { hold: c.action.hold } } };
    case "campaign":
      return { ...base, action: { case: "campaign", value: { epochFloor: big(c.action.epochFloor), waitMs: c.action.waitMs } } };
    case "hold":
      return { ...base, action: { case: "hold", value: {} } };
    case "release":
      return { ...base, action: { case: "release", value: {} } };
  }
}

/** Throws INVALID_ARGUMENT for a command without an id or an action. */
export function commandFromWire(c: Command): NodeCommand {
  if (c.commandId === "") throw invalidArgument("command has no command_id");
  const base = { commandId: c.commandId, epoch: Number(c.epoch), reason: c.reason, coordinatorTerm: Number(c.coordinatorTerm) };
  switch (c.action.case) {
    case "resign":
      return { ...base, action: { kind: "resign", hold: c.action.value.hold } };
    case "campaign":
      return { ...base, action: { kind: "campaign", epochFloor: Number(c.action.value.epochFloor), waitMs: c.action.value.waitMs } };
    case "hold":
      return { ...base, action: { kind: "hold" } };
    case "release":
      return { ...base, action: { kind: "release" } };
    default:
      throw invalidArgument(`command ${c.commandId} has no action`);
  }
}

const results: [CommandResult, WireResult][] = [
  ["done", WireResult.DONE],
  ["refused", WireResult.REFUSED],
  ["failed", WireResult.FAILED],
];

export function ackToWire(o: CommandOutcome): CommandAck {
  return create(CommandAckSchema, {
    commandId: o.commandId,
    result: results.find(([d]) => d === o.result)?.[1] ?? WireResult.UNSPECIFIED,
    message: o.message,
    epoch: big(o.epoch),
    resignedAt: ts(o.resignedAt),
  });
}

/** An ack that says neither done, refused nor failed counts as failed; a value outside the enum is INVALID_ARGUMENT. */
export function ackFromWire(a: CommandAck): CommandOutcome {
  return {
    commandId: a.commandId,
    result: a.result === WireResult.UNSPECIFIED ? "failed" : strictEnum(results, a.result, "ack.result", WireResult),
    message: a.message,
    epoch: Number(a.epoch),
    resignedAt: date(a.resignedAt),
  };
}

import { lockDatabaseLabel } from "../../core/lock-database.js";
import { noLeader, unknownReplication, type LocalDatabaseView, type NodeReport, type ReplicationView } from "../../core/model.js";
import type { ClusterView, DatabaseTruth, NodeState } from "./cluster-view.js";

/**
 * Builders for cluster views in tests: a healthy default that each case
 * changes in the one respect it is about. `now` is the monotonic instant the
 * view is judged at; timestamps default to "just now".
 */
export const DB_ID = { systemIdentifier: "7301000000000000001", timeline: 1, inRecovery: false } as const;
/** The display text an agent sends beside the typed identity. */
export const DB_LOCK_ID = lockDatabaseLabel(DB_ID);

/** Report fields saying the node's lock is on server `systemIdentifier`, timeline `timeline`. */
export function onLockDatabase(systemIdentifier: string, timeline: number): Pick<NodeReport, "lockDatabase" | "lockDatabaseId"> {
  const lockDatabase = { systemIdentifier, timeline };
  return { lockDatabase, lockDatabaseId: lockDatabaseLabel(lockDatabase) };
}

export function replication(overrides: Partial<ReplicationView> = {}): ReplicationView {
  return { ...unknownReplication, lagStatus: "ok", replicaCount: 1, syncReplicaCount: 0, ...overrides };
}

export function localDb(overrides: Partial<LocalDatabaseView> = {}): LocalDatabaseView {
  return {
    reachable: true,
    inRecovery: true,
    timeline: 1,
    receiveLsn: "0/3000000",
    replayLsn: "0/3000000",
    replayLagSeconds: 0,
    lagStatus: "ok",
    systemIdentifier: DB_ID.systemIdentifier,
    streaming: true,
    error: "",
    ...overrides,
  };
}

export function report(nodeId: string, overrides: Partial<NodeReport> = {}): NodeReport {
  return {
    nodeId,
    sequence: 1,
    clusterId: "default",
    sentAt: new Date("2026-03-18T10:00:00Z"),
    role: "follower",
    sessionLockHeld: false,
    writeReady: false,
    writeReadyReason: "not the leader",
    epoch: 0,
    observedLeader: noLeader,
    highestEpochSeen: 0,
    lockBackendPid: 0,
    lockConfirmedAt: undefined,
    priority: 0,
    nofailover: false,
    replication: unknownReplication,
    localDatabase: undefined,
    lockDatabaseId: DB_LOCK_ID,
    lockDatabase: { systemIdentifier: DB_ID.systemIdentifier, timeline: DB_ID.timeline },
    lockDatabaseWritable: true,
    region: "",
    leaseMs: 3_000,
    endpoint: `http://${nodeId}:8888`,
    databaseError: "",
    version: "test",
    minSyncReplicas: 0,
    held: overrides.role === "held",
    ...overrides,
  };
}

/** A leader's report holding `epoch`, write-ready. */
export function leaderReport(nodeId: string, epoch: number, overrides: Partial<NodeReport> = {}): NodeReport {
  return report(nodeId, {
    role: "leader",
    sessionLockHeld: true,
    writeReady: true,
    writeReadyReason: "",
    epoch,
    highestEpochSeen: epoch,
    lockBackendPid: 1000 + epoch,
    observedLeader: { holderId: nodeId, epoch, acquiredAt: new Date("2026-03-18T08:30:00Z"), writeReady: true, heartbeatAt: undefined },
    replication: replication(),
    ...overrides,
  });
}

export function followerReport(nodeId: string, leaderId: string, epoch: number, overrides: Partial<NodeReport> = {}): NodeReport {
  return report(nodeId, {
    highestEpochSeen: epoch,
    observedLeader: { holderId: leaderId, epoch, acquiredAt: undefined, writeReady: true, heartbeatAt: undefined },
    ...overrides,
  });
}

export function node(r: NodeReport, now: number, overrides: Partial<NodeState> = {}): NodeState {
  const claims = r.sessionLockHeld || r.writeReady;
  return { nodeId: r.nodeId, report: r, connected: true, lastReportMs: now, claimSinceMs: claims ? now - 10_000 : undefined, ...overrides };
}

/** Database truth where `holder` holds the lock and leadership_state names it for `epoch`. */
export function dbTruth(holder: string | undefined, epoch: number, now: number, overrides: Partial<DatabaseTruth> = {}): DatabaseTruth {
  return {
    reachable: true,
    error: "",
    readAtMs: now,
    identity: DB_ID,
    leadership: { holderId: holder, epoch, acquiredAt: new Date("2026-03-18T08:30:00Z"), heartbeatAt: new Date("2026-03-18T10:00:00Z") },
    lockHolders: holder ? [{ pid: 1000 + epoch, applicationName: holder, backendStart: undefined, clientAddr: "127.0.0.1" }] : [],
    unclosedEpochs: holder ? [{ epoch, holderId: holder, acquiredAt: new Date("2026-03-18T08:30:00Z"), resignedAt: undefined, endReason: undefined }] : [],
    heartbeatAdvancedAtMs: now,
    lockHoldersSinceMs: now - 60_000,
    epochChangedAtMs: now - 60_000,
    ...overrides,
  };
}

export function clusterView(nodes: NodeState[], db: DatabaseTruth | undefined, overrides: Partial<ClusterView> = {}): ClusterView {
  return {
    clusterId: "default",
    nodes,
    db,
    maintenance: false,
    reconcileHold: false,
    operationInProgress: undefined,
    epochFloor: 0,
    lastAutomaticFailoverMs: undefined,
    leaderlessSinceMs: undefined,
    pendingCampaign: undefined,
    designation: undefined,
    ...overrides,
  };
}

/** The usual healthy cluster: cp-node-1 leads `epoch`, cp-node-2 and cp-node-3 follow. */
export function healthyCluster(now: number, epoch = 7): ClusterView {
  return clusterView(
    [
      node(leaderReport("cp-node-1", epoch), now),
      node(followerReport("cp-node-2", "cp-node-1", epoch, { localDatabase: localDb({ replayLagSeconds: 0.02 }) }), now),
      node(followerReport("cp-node-3", "cp-node-1", epoch, { localDatabase: localDb({ replayLagSeconds: 0.5 }) }), now),
    ],
    dbTruth("cp-node-1", epoch, now),
  );
}

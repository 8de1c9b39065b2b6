import { lockDatabaseLabel, type LockDatabaseIdentity } from "../core/lock-database.js";
import type { LocalDatabaseView, NodeReport, ReplicationView } from "../core/model.js";
import type { AgentConfig } from "./config.js";
import type { ElectionSnapshot } from "./election/elector.js";
import type { Readiness } from "./election/readiness.js";

/** What the probes last measured, and which database holds our lock. */
export interface ProbeResults {
  readonly replication: ReplicationView;
  readonly localDatabase: LocalDatabaseView | undefined;
  /** The server the lock session is on, once read. */
  readonly lockDatabase: LockDatabaseIdentity | undefined;
  readonly lockDatabaseWritable: boolean;
}

/**
 * The node's report: what is, never what should be. One builder serves the
 * coordinator stream, the HTTP endpoints, GetStatus and /metrics, so they
 * always agree.
 */
export function buildReport(
  config: AgentConfig,
  election: ElectionSnapshot,
  readiness: Readiness,
  probes: ProbeResults,
  extra: { sequence: number; sentAt: Date; endpoint: string; version: string },
): NodeReport {
  const leading = election.term !== undefined;
  const observed = leading
    ? { ...election.observed, holderId: config.nodeId, epoch: election.term!.epoch, writeReady: readiness.ready }
    : election.observed;
  return {
    nodeId: config.nodeId,
    sequence: extra.sequence,
    clusterId: config.clusterId,
    sentAt: extra.sentAt,
    role: election.role,
    sessionLockHeld: election.sessionLockHeld,
    writeReady: readiness.ready,
    writeReadyReason: readiness.reason,
    epoch: election.term?.epoch ?? 0,
    observedLeader: observed,
    highestEpochSeen: election.highestEpochSeen,
    lockBackendPid: election.lockBackendPid,
    lockConfirmedAt: election.lockConfirmedAt,
    priority: config.priority,
    nofailover: config.nofailover,
    replication: probes.replication,
    localDatabase: probes.localDatabase,
    lockDatabaseId: lockDatabaseLabel(probes.lockDatabase),
    lockDatabase: probes.lockDatabase,
    lockDatabaseWritable: probes.lockDatabaseWritable,
    region: config.region,
    leaseMs: config.leaseMs,
    endpoint: extra.endpoint,
    databaseError: election.databaseError,
    version: extra.version,
    minSyncReplicas: config.minSyncReplicas,
    held: election.held,
  };
}

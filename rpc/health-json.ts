import { formatDurationMs } from "../core/duration.js";
import type { LeaderView, NodeReport, ReplicationView } from "../core/model.js";

/**
 * The JSON bodies of the /v1/health/* paths, with the runbooks' field names.
 * Shared by agent and coordinator so both answer the same shapes.
 */
export function leaderJson(r: NodeReport): Record<string, unknown> {
  return { ...leaderFields(r.observedLeader, r.sessionLockHeld, r.writeReady), node_id: r.nodeId, role: r.role };
}

/**
 * The /v1/health/leader fields both answer: an agent for its node (its own
 * lock and readiness), the coordinator for the cluster's leader.
 */
export function leaderFields(leader: LeaderView, sessionLockHeld: boolean, writeReady: boolean): Record<string, unknown> {
  return {
    holder_id: leader.holderId,
    current_epoch: leader.epoch,
    session_lock_held: sessionLockHeld,
    write_ready: writeReady,
    acquired_at: leader.acquiredAt?.toISOString() ?? null,
    heartbeat_at: leader.heartbeatAt?.toISOString() ?? null,
  };
}

/**
 * /v1/health/write-ready for one node: `ready` first (seed 000 §4 reads
 * `{"ready": false}` on the old leader), then whose answer it is and why.
 */
export function writeReadyJson(r: NodeReport): Record<string, unknown> {
  return {
    ready: r.writeReady,
    node_id: r.nodeId,
    role: r.role,
    epoch: r.epoch,
    ...(r.writeReady ? {} : { reason: r.writeReadyReason || `this node is ${r.role}` }),
  };
}

export function replicationJson(rep: ReplicationView): Record<string, unknown> {
  return {
    lag_status: rep.lagStatus,
    max_write_lag: formatDurationMs(rep.maxWriteLagSeconds * 1000),
    max_replay_lag: formatDurationMs(rep.maxReplayLagSeconds * 1000),
    max_write_lag_seconds: rep.maxWriteLagSeconds,
    max_replay_lag_seconds: rep.maxReplayLagSeconds,
    replicas: rep.replicaCount,
    sync_replicas: rep.syncReplicaCount,
    standbys: rep.replicas.map((x) => ({
      application_name: x.applicationName,
      client_addr: x.clientAddr,
      state: x.state,
      sync_state: x.syncState,
      write_lag_seconds: x.writeLagSeconds,
      replay_lag_seconds: x.replayLagSeconds,
      replay_lag_bytes: x.replayLagBytes,
    })),
    ...(rep.error ? { error: rep.error } : {}),
  };
}

import type { LagStatus, NodeReport } from "../../core/model.js";

const lagCode: Record<LagStatus, number> = { unknown: -1, ok: 0, warn: 1, critical: 2 };

/** Prometheus text exposition of one node's report. */
export function agentMetrics(r: NodeReport): string {
  const node = `node_id="${r.nodeId}",cluster_id="${r.clusterId}"`;
  const lines = [
    "# HELP autonomy_agent_role Role of this node (1 for the current role).",
    "# TYPE autonomy_agent_role gauge",
    ...(["leader", "follower", "held", "fenced", "disconnected"] as const).map(
      (role) => `autonomy_agent_role{${node},role="${role}"} ${r.role === role ? 1 : 0}`,
    ),
    "# HELP autonomy_agent_epoch Epoch this node holds (0 when none).",
    "# TYPE autonomy_agent_epoch gauge",
    `autonomy_agent_epoch{${node}} ${r.epoch}`,
    "# HELP autonomy_agent_observed_epoch leadership_state.epoch as this node reads it.",
    "# TYPE autonomy_agent_observed_epoch gauge",
    `autonomy_agent_observed_epoch{${node}} ${r.observedLeader.epoch}`,
    "# HELP autonomy_agent_session_lock_held Whether this node holds the leader lock.",
    "# TYPE autonomy_agent_session_lock_held gauge",
    `autonomy_agent_session_lock_held{${node}} ${r.sessionLockHeld ? 1 : 0}`,
    "# HELP autonomy_agent_write_ready Whether this node may write.",
    "# TYPE autonomy_agent_write_ready gauge",
    `autonomy_agent_write_ready{${node}} ${r.writeReady ? 1 : 0}`,
    "# HELP autonomy_replication_max_replay_lag_seconds Largest replica replay lag seen on the primary.",
    "# TYPE autonomy_replication_max_replay_lag_seconds gauge",
    `autonomy_replication_max_replay_lag_seconds{${node}} ${r.replication.maxReplayLagSeconds}`,
    "# HELP autonomy_replication_max_write_lag_seconds Largest replica write lag seen on the primary.",
    "# TYPE autonomy_replication_max_write_lag_seconds gauge",
    `autonomy_replication_max_write_lag_seconds{${node}} ${r.replication.maxWriteLagSeconds}`,
    "# HELP autonomy_replication_lag_status -1 unknown, 0 ok, 1 warn, 2 critical.",
    "# TYPE autonomy_replication_lag_status gauge",
    `autonomy_replication_lag_status{${node}} ${lagCode[r.replication.lagStatus]}`,
    "# HELP autonomy_replication_replicas Connected replicas.",
    "# TYPE autonomy_replication_replicas gauge",
    `autonomy_replication_replicas{${node}} ${r.replication.replicaCount}`,
  ];
  if (r.localDatabase) {
    lines.push(
      "# HELP autonomy_local_replay_lag_seconds Replay lag of this node's own PostgreSQL.",
      "# TYPE autonomy_local_replay_lag_seconds gauge",
      `autonomy_local_replay_lag_seconds{${node}} ${r.localDatabase.replayLagSeconds}`,
      "# HELP autonomy_local_in_recovery Whether this node's own PostgreSQL is a standby.",
      "# TYPE autonomy_local_in_recovery gauge",
      `autonomy_local_in_recovery{${node}} ${r.localDatabase.inRecovery ? 1 : 0}`,
    );
  }
  return lines.join("\n") + "\n";
}

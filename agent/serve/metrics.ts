import type { LagStatus, NodeReport } from "../../core/model.js";
import { gauge, Registry } from "../../rpc/metrics.js";

const lagCode: Record<LagStatus, number> = { unknown: -1, ok: 0, warn: 1, critical: 2 };
const roles = ["leader", "follower", "held", "fenced", "disconnected"] as const;

/** The node's metrics, read from its current report on every scrape. */
export function agentMetrics(report: () => NodeReport, registry: Registry = new Registry()): Registry {
  const node = (r: NodeReport) => ({ node_id: r.nodeId, cluster_id: r.clusterId });
  const one = (value: (r: NodeReport) => number) => () => {
    const r = report();
    return [[node(r), value(r)] as const];
  };
  const local = (value: (l: NonNullable<NodeReport["localDatabase"]>) => number) => () => {
    const r = report();
    return r.localDatabase ? [[node(r), value(r.localDatabase)] as const] : [];
  };
  const labels = ["node_id", "cluster_id"] as const;

  gauge(registry, {
    name: "autonomy_agent_role",
    help: "Role of this node (1 for the current role).",
    labels: [...labels, "role"],
    samples: () => {
      const r = report();
      return roles.map((role) => [{ ...node(r), role }, r.role === role ? 1 : 0] as const);
    },
  });
  gauge(registry, { name: "autonomy_agent_epoch", help: "Epoch this node holds (0 when none).", labels, samples: one((r) => r.epoch) });
  gauge(registry, { name: "autonomy_agent_observed_epoch", help: "leadership_state.epoch as this node reads it.", labels, samples: one((r) => r.observedLeader.epoch) });
  gauge(registry, { name: "autonomy_agent_session_lock_held", help: "Whether this node holds the leader lock.", labels, samples: one((r) => (r.sessionLockHeld ? 1 : 0)) });
  gauge(registry, { name: "autonomy_agent_write_ready", help: "Whether this node may write.", labels, samples: one((r) => (r.writeReady ? 1 : 0)) });
  gauge(registry, { name: "autonomy_replication_max_replay_lag_seconds", help: "Largest replica replay lag seen on the primary.", labels, samples: one((r) => r.replication.maxReplayLagSeconds) });
  gauge(registry, { name: "autonomy_replication_max_write_lag_seconds", help: "Largest replica write lag seen on the primary.", labels, samples: one((r) => r.replication.maxWriteLagSeconds) });
  gauge(registry, { name: "autonomy_replication_lag_status", help: "-1 unknown, 0 ok, 1 warn, 2 critical.", labels, samples: one((r) => lagCode[r.replication.lagStatus]) });
  gauge(registry, { name: "autonomy_replication_replicas", help: "Connected replicas.", labels, samples: one((r) => r.replication.replicaCount) });
  // Only agents given --local-database-url have series here.
  gauge(registry, { name: "autonomy_local_replay_lag_seconds", help: "Replay lag of this node's own PostgreSQL.", labels, samples: local((l) => l.replayLagSeconds) });
  gauge(registry, { name: "autonomy_local_in_recovery", help: "Whether this node's own PostgreSQL is a standby.", labels, samples: local((l) => (l.inRecovery ? 1 : 0)) });
  return registry;
}

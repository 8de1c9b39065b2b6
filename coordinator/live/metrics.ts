import type { LeaderView } from "../../core/model.js";
import type { NodeState } from "../view/cluster-view.js";
import { counter, gauge, Registry, type Sample } from "../../rpc/metrics.js";
import type { CoordinatorTier } from "../ha/tier.js";

export interface MetricsSnapshot {
  readonly clusterId: string;
  readonly leader: LeaderView;
  readonly nodes: readonly NodeState[];
  readonly splitBrain: boolean;
  readonly splitBrainDetections: number;
  readonly failovers: Readonly<Record<"planned" | "automatic" | "recovery", number>>;
  readonly maintenance: boolean;
  readonly databaseReachable: boolean;
  readonly watchers: number;
  /** Lock holders that are no agent's session; optional until every caller passes it. */
  readonly intruders?: { readonly current: number; readonly detected: number; readonly terminated: number };
}

/** The coordinator's metrics, read from its current snapshot (one per cluster it serves) on every scrape. */
export function coordinatorMetrics(snapshot: () => MetricsSnapshot | readonly MetricsSnapshot[], registry: Registry = new Registry()): Registry {
  const cluster = ["cluster_id"] as const;
  const perNode = ["cluster_id", "node_id"] as const;
  const each = (): readonly MetricsSnapshot[] => {
    const s = snapshot();
    return Array.isArray(s) ? s : [s as MetricsSnapshot];
  };
  const one = (value: (m: MetricsSnapshot) => number) => (): Sample[] => each().map((m) => [{ cluster_id: m.clusterId }, value(m)]);
  const nodes = (value: (n: NodeState, m: MetricsSnapshot) => number, which: (n: NodeState) => boolean = () => true) => (): Sample[] =>
    each().flatMap((m) => m.nodes.filter(which).map((n): Sample => [{ cluster_id: m.clusterId, node_id: n.nodeId }, value(n, m)]));
  const intruders = (m: MetricsSnapshot) => m.intruders ?? { current: 0, detected: 0, terminated: 0 };

  gauge(registry, { name: "autonomy_ha_leader", help: "1 for the node holding write authority.", labels: perNode, samples: nodes((n, m) => (n.nodeId === m.leader.holderId ? 1 : 0)) });
  gauge(registry, { name: "autonomy_ha_has_leader", help: "1 when some node holds write authority.", labels: cluster, samples: one((m) => (m.leader.holderId ? 1 : 0)) });
  gauge(registry, { name: "autonomy_ha_epoch", help: "The current epoch (fencing token).", labels: cluster, samples: one((m) => m.leader.epoch) });
  gauge(registry, { name: "autonomy_ha_leader_write_ready", help: "1 when the leader is Write-Ready.", labels: cluster, samples: one((m) => (m.leader.writeReady ? 1 : 0)) });
  gauge(registry, { name: "autonomy_ha_node_connected", help: "1 while the node's agent stream is open.", labels: perNode, samples: nodes((n) => (n.connected ? 1 : 0)) });
  gauge(registry, { name: "autonomy_ha_node_epoch", help: "The epoch the node holds (0 when none).", labels: perNode, samples: nodes((n) => n.report.epoch) });
  gauge(registry, { name: "autonomy_ha_node_replay_lag_seconds", help: "The node's own standby replay lag.", labels: perNode, samples: nodes((n) => n.report.localDatabase?.replayLagSeconds ?? 0) });
  gauge(registry, {
    name: "autonomy_ha_replication_max_replay_lag_seconds",
    help: "The worst replay lag among the primary's replicas, as each node reports it.",
    labels: perNode,
    samples: nodes((n) => n.report.replication.maxReplayLagSeconds, (n) => n.report.replication.replicaCount > 0),
  });
  gauge(registry, { name: "autonomy_ha_split_brain", help: "1 while a split-brain is detected.", labels: cluster, samples: one((m) => (m.splitBrain ? 1 : 0)) });
  counter(registry, { name: "autonomy_ha_split_brain_detections_total", help: "Split-brain findings raised.", labels: cluster, samples: one((m) => m.splitBrainDetections) });
  counter(registry, {
    name: "autonomy_ha_failovers_total",
    help: "Failovers ordered by the coordinator, by kind.",
    labels: ["cluster_id", "kind"],
    samples: () => each().flatMap((m) => (["planned", "automatic", "recovery"] as const).map((kind): Sample => [{ cluster_id: m.clusterId, kind }, m.failovers[kind]])),
  });
  gauge(registry, { name: "autonomy_ha_maintenance", help: "1 while automatic actions are paused.", labels: cluster, samples: one((m) => (m.maintenance ? 1 : 0)) });
  gauge(registry, { name: "autonomy_ha_database_reachable", help: "1 when the coordinator can read the lock database.", labels: cluster, samples: one((m) => (m.databaseReachable ? 1 : 0)) });
  gauge(registry, { name: "autonomy_ha_intruder_lock_holders", help: "Sessions holding the leader lock that no agent's report names.", labels: cluster, samples: one((m) => intruders(m).current) });
  counter(registry, { name: "autonomy_ha_intruders_detected_total", help: "Intruding lock holders found.", labels: cluster, samples: one((m) => intruders(m).detected) });
  counter(registry, { name: "autonomy_ha_intruders_terminated_total", help: "Intruding lock holders whose session the coordinator ended.", labels: cluster, samples: one((m) => intruders(m).terminated) });
  gauge(registry, { name: "autonomy_ha_leader_watchers", help: "Open WatchLeader streams.", labels: cluster, samples: one((m) => m.watchers) });
  return registry;
}

/** Which coordinator is active, for alerts: exactly one 1 across the tier, and its term. */
export function tierMetrics(tier: Pick<CoordinatorTier, "role" | "acting">, registry: Registry = new Registry()): Registry {
  const labels = ["coordinator_id"] as const;
  gauge(registry, { name: "autonomy_ha_coordinator_active", help: "1 while this coordinator is the active one of its tier.", labels, samples: () => [[{ coordinator_id: tier.role().coordinatorId }, tier.acting() ? 1 : 0]] });
  gauge(registry, { name: "autonomy_ha_coordinator_term", help: "The active coordinator's term as this coordinator knows it (0: none known).", labels, samples: () => [[{ coordinator_id: tier.role().coordinatorId }, tier.role().term]] });
  return registry;
}

/** The text exposition of one snapshot, without the process metrics (for tests and tools). */
export function renderMetrics(m: MetricsSnapshot): Promise<string> {
  return coordinatorMetrics(() => m).metrics();
}

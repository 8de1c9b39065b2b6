import type { LeaderView } from "../../core/model.js";
import type { NodeState } from "../view/cluster-view.js";

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

/** Prometheus text exposition (version 0.0.4) of the coordinator's state. */
export function renderMetrics(m: MetricsSnapshot): string {
  const lines: string[] = [];
  const c = `cluster_id="${esc(m.clusterId)}"`;
  const metric = (name: string, type: "gauge" | "counter", help: string, rows: [string, number][]) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of rows) lines.push(`${name}{${labels}} ${Number.isFinite(value) ? value : 0}`);
  };
  metric("autonomy_ha_leader", "gauge", "1 for the node holding write authority.", m.nodes.map((n) => [`${c},node_id="${esc(n.nodeId)}"`, n.nodeId === m.leader.holderId ? 1 : 0]));
  metric("autonomy_ha_has_leader", "gauge", "1 when some node holds write authority.", [[c, m.leader.holderId ? 1 : 0]]);
  metric("autonomy_ha_epoch", "gauge", "The current epoch (fencing token).", [[c, m.leader.epoch]]);
  metric("autonomy_ha_leader_write_ready", "gauge", "1 when the leader is Write-Ready.", [[c, m.leader.writeReady ? 1 : 0]]);
  metric("autonomy_ha_node_connected", "gauge", "1 while the node's agent stream is open.", m.nodes.map((n) => [`${c},node_id="${esc(n.nodeId)}"`, n.connected ? 1 : 0]));
  metric("autonomy_ha_node_epoch", "gauge", "The epoch the node holds (0 when none).", m.nodes.map((n) => [`${c},node_id="${esc(n.nodeId)}"`, n.report.epoch]));
  metric(
    "autonomy_ha_node_replay_lag_seconds",
    "gauge",
    "The node's own standby replay lag.",
    m.nodes.map((n) => [`${c},node_id="${esc(n.nodeId)}"`, n.report.localDatabase?.replayLagSeconds ?? 0]),
  );
  metric(
    "autonomy_ha_replication_max_replay_lag_seconds",
    "gauge",
    "The worst replay lag among the primary's replicas, as each node reports it.",
    m.nodes.filter((n) => n.report.replication.replicaCount > 0).map((n) => [`${c},node_id="${esc(n.nodeId)}"`, n.report.replication.maxReplayLagSeconds]),
  );
  metric("autonomy_ha_split_brain", "gauge", "1 while a split-brain is detected.", [[c, m.splitBrain ? 1 : 0]]);
  metric("autonomy_ha_split_brain_detections_total", "counter", "Split-brain findings raised.", [[c, m.splitBrainDetections]]);
  metric("autonomy_ha_failovers_total", "counter", "Failovers ordered by the coordinator, by kind.", (["planned", "automatic", "recovery"] as const).map((k) => [`${c},kind="${k}"`, m.failovers[k]]));
  metric("autonomy_ha_maintenance", "gauge", "1 while automatic actions are paused.", [[c, m.maintenance ? 1 : 0]]);
  metric("autonomy_ha_database_reachable", "gauge", "1 when the coordinator can read the lock database.", [[c, m.databaseReachable ? 1 : 0]]);
  const i = m.intruders ?? { current: 0, detected: 0, terminated: 0 };
  metric("autonomy_ha_intruder_lock_holders", "gauge", "Sessions holding the leader lock that no agent's report names.", [[c, i.current]]);
  metric("autonomy_ha_intruders_detected_total", "counter", "Intruding lock holders found.", [[c, i.detected]]);
  metric("autonomy_ha_intruders_terminated_total", "counter", "Intruding lock holders whose session the coordinator ended.", [[c, i.terminated]]);
  metric("autonomy_ha_leader_watchers", "gauge", "Open WatchLeader streams.", [[c, m.watchers]]);
  return lines.join("\n") + "\n";
}

const esc = (s: string) => s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

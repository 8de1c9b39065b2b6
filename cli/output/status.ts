import type { CoordinatorStatus, DatabaseStatus, GetStatusResponse, NodeStatus } from "../../gen/autonomy/ha/v1/admin_pb.js";
import { LagStatus } from "../../gen/autonomy/ha/v1/types_pb.js";
import { lagFromWire, roleFromWire } from "../../rpc/wire.js";
import { labelled, lagText, num, table, timeOrNull, timeText } from "./format.js";

/*
 * `autonomy ha status`: seed 000 §1 block by block, so `| head -6` in the
 * runbook's watch loop still shows Role, lock, Write-Ready and Queried At.
 * Everything we add (nodes, maintenance, split-brain) comes after the seed's blocks.
 */

/** Values start in column 20 in every block, as in the runbook. */
const TOP = 20;
const SUB = 18;

export function statusText(s: GetStatusResponse): string[] {
  const leader = s.leader;
  const quorum = s.quorum;
  const repl = s.replication;
  const lines = [
    ...labelled(
      [
        ["Role", s.role || "unknown"],
        ["Session lock held", claimText(s.sessionLockHeld, s)],
        ["Write-Ready", claimText(s.writeReady, s)],
        ["Queried At", timeText(s.queriedAt)],
      ],
      "",
      TOP,
    ),
    "",
    "Leader",
    ...labelled(
      [
        ["Holder ID", leader?.holderId || "none"],
        ["Epoch", String(num(leader?.epoch ?? 0n))],
        ["Acquired At", timeText(leader?.acquiredAt)],
      ],
      "  ",
      SUB,
    ),
    "",
    "Quorum",
    ...labelled(
      [
        ["Write-Ready", quorum?.unknownReason ? `false (${quorum.unknownReason})` : String(quorum?.writeReady ?? false)],
        ["Sync Replicas", String(quorum?.syncReplicas ?? 0)],
      ],
      "  ",
      SUB,
    ),
    "",
    "Replication",
    ...labelled(
      [
        ["Lag Status", lagFromWire(repl?.lagStatus ?? 0)],
        ["Max Write Lag", measuredLag(repl?.lagStatus ?? 0, repl?.maxWriteLagSeconds ?? 0)],
        ["Max Replay Lag", measuredLag(repl?.lagStatus ?? 0, repl?.maxReplayLagSeconds ?? 0)],
        ["Replicas", String(repl?.replicaCount ?? 0)],
        ...(repl?.error ? ([["Probe Error", repl.error]] as const) : []),
      ],
      "  ",
      SUB,
    ),
  ];
  if (s.database) lines.push("", "Database", ...databaseBlock(s.database));
  if (s.coordinator) lines.push("", "Coordinator", ...coordinatorBlock(s.coordinator));
  if (s.nodes.length > 0) lines.push("", "Nodes", ...nodesTable(s.nodes));
  const notes: [string, string][] = [];
  if (s.maintenance) notes.push(["Maintenance", 'paused: no automatic failover or recovery ("autonomy ha resume" ends it)']);
  if (s.splitBrainDetected) notes.push(["Split-Brain", 'DETECTED: run "autonomy ha split-brain detect" for the evidence']);
  if (s.databaseError) notes.push(["Database", `UNREACHABLE: the leader and nodes above are the coordinator's last reading (${s.databaseError})`]);
  if (notes.length > 0) lines.push("", ...labelled(notes, "", TOP));
  return lines;
}

/**
 * A claim (lock, Write-Ready) of a node that may have stopped reporting: a
 * node that is disconnected or silent claims nothing, so its cell says
 * "stale" and how old its last report is, never its last word.
 */
function claimText(claim: boolean, n: { stale: boolean; connected?: boolean; lastReportAgeMs: bigint }): string {
  if (!n.stale && n.connected !== false) return String(claim);
  return n.lastReportAgeMs > 0n ? `stale ${ageText(num(n.lastReportAgeMs))}` : "stale";
}

/** 850 → "850ms", 31_400 → "31s", 420_000 → "7m", 10_800_000 → "3h". */
export function ageText(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 120_000) return `${Math.floor(ms / 1000)}s`;
  if (ms < 7_200_000) return `${Math.floor(ms / 60_000)}m`;
  return `${Math.floor(ms / 3_600_000)}h`;
}

/** An unmeasured lag is "unknown", not "0ms". */
function measuredLag(status: LagStatus, seconds: number): string {
  return status === LagStatus.UNSPECIFIED ? "unknown" : lagText(seconds);
}

function nodesTable(nodes: readonly NodeStatus[]): string[] {
  return table(
    ["NODE", "ROLE", "LOCK", "WRITE-READY", "EPOCH", "PRIORITY", "LAG", "CONNECTED"],
    nodes.map((n) => [
      n.nodeId,
      roleFromWire(n.role),
      claimText(n.sessionLockHeld, n),
      claimText(n.writeReady, n),
      n.epoch === 0n ? "-" : String(num(n.epoch)),
      n.nofailover ? `${n.priority} (nofailover)` : String(n.priority),
      n.lagStatus === LagStatus.UNSPECIFIED ? "unknown" : `${lagFromWire(n.lagStatus)} ${lagText(n.replayLagSeconds)}`,
      String(n.connected),
    ]),
    "  ",
  );
}

/** Seed 000's field names (and the /v1/health/* endpoints'), snake_case; lags both as text and seconds. */
export function statusJson(s: GetStatusResponse) {
  const repl = s.replication;
  return {
    role: s.role || "unknown",
    session_lock_held: s.sessionLockHeld,
    write_ready: s.writeReady,
    stale: s.stale,
    last_report_age_ms: num(s.lastReportAgeMs),
    queried_at: timeOrNull(s.queriedAt),
    node_id: s.nodeId,
    cluster_id: s.clusterId,
    answered_by: s.answeredBy,
    database_error: s.databaseError || null,
    leader: {
      holder_id: s.leader?.holderId ?? "",
      epoch: num(s.leader?.epoch ?? 0n),
      acquired_at: timeOrNull(s.leader?.acquiredAt),
      write_ready: s.leader?.writeReady ?? false,
    },
    quorum: {
      write_ready: s.quorum?.writeReady ?? false,
      sync_replicas: s.quorum?.syncReplicas ?? 0,
      min_sync_replicas: s.quorum?.minSyncReplicas ?? 0,
      unknown_reason: s.quorum?.unknownReason || null,
    },
    replication: {
      lag_status: lagFromWire(repl?.lagStatus ?? 0),
      max_write_lag: measuredLag(repl?.lagStatus ?? 0, repl?.maxWriteLagSeconds ?? 0),
      max_write_lag_seconds: repl?.maxWriteLagSeconds ?? 0,
      max_replay_lag: measuredLag(repl?.lagStatus ?? 0, repl?.maxReplayLagSeconds ?? 0),
      max_replay_lag_seconds: repl?.maxReplayLagSeconds ?? 0,
      replicas: repl?.replicaCount ?? 0,
      error: repl?.error ?? "",
    },
    nodes: s.nodes.map(nodeJson),
    maintenance: s.maintenance,
    split_brain_detected: s.splitBrainDetected,
    ...(s.database ? { database: databaseJson(s.database) } : {}),
    ...(s.coordinator ? { coordinator: coordinatorJson(s.coordinator) } : {}),
  };
}

function coordinatorJson(c: CoordinatorStatus) {
  return {
    coordinator_id: c.coordinatorId,
    role: c.role,
    term: num(c.term),
    active_id: c.activeId || null,
    active_url: c.activeUrl || null,
  };
}

/** Which coordinator answered, whether it is the active one, and which one is. */
function coordinatorBlock(c: CoordinatorStatus): string[] {
  return labelled(
    [
      ["Answered By", `${c.coordinatorId} (${c.role})`],
      ["Active", c.activeId ? `${c.activeId} at ${c.activeUrl} (term ${num(c.term)})` : "none right now (a takeover is under way)"],
    ],
    "  ",
    SUB,
  );
}

function databaseJson(d: DatabaseStatus) {
  return {
    writes_usable: d.writesUsable,
    reason: d.reason || null,
    primary_host: d.primaryHost || null,
    system_identifier: d.systemIdentifier || null,
    timeline: d.timeline || null,
    writer_node: d.writerNode || null,
    writer_region: d.writerRegion || null,
    highest_epoch: num(d.highestEpoch),
    last_promotion_at: timeOrNull(d.lastPromotionAt),
    last_promotion_rto_ms: num(d.lastPromotionRtoMs) || null,
    coordinator_region: d.coordinatorRegion || null,
  };
}

function nodeJson(n: NodeStatus) {
  return {
    node_id: n.nodeId,
    role: roleFromWire(n.role),
    connected: n.connected,
    // A node that stopped reporting claims nothing: both claims are false and stale says so.
    stale: n.stale || !n.connected,
    last_report_age_ms: num(n.lastReportAgeMs),
    session_lock_held: n.sessionLockHeld,
    write_ready: n.writeReady,
    write_ready_reason: n.writeReadyReason,
    epoch: num(n.epoch),
    priority: n.priority,
    nofailover: n.nofailover,
    lag_status: lagFromWire(n.lagStatus),
    replay_lag: measuredLag(n.lagStatus, n.replayLagSeconds),
    replay_lag_seconds: n.replayLagSeconds,
    last_report_at: timeOrNull(n.lastReportAt),
    endpoint: n.endpoint,
  };
}

/** Seed 004 §5 in the status: the primary, its timeline, and whether writes are usable through it. */
function databaseBlock(d: DatabaseStatus): string[] {
  const rto = num(d.lastPromotionRtoMs);
  return labelled(
    [
      ["Primary", d.primaryHost ? `${d.primaryHost}${d.systemIdentifier ? ` (system ${d.systemIdentifier})` : ""}` : "unknown"],
      ["Timeline", d.timeline ? String(d.timeline) : "unknown"],
      ["Writes Usable", d.writesUsable ? "true" : `false (${d.reason || "unknown"})`],
      ["Writer Region", d.writerRegion || "not set"],
      ["Highest Epoch", String(num(d.highestEpoch))],
      ["Last Promotion", d.lastPromotionAt ? `${timeText(d.lastPromotionAt)}${rto > 0 ? ` (RTO ${rto}ms)` : ""}` : "none seen"],
    ],
    "  ",
    SUB,
  );
}

import type { CoordinatorRole } from "../ha/coordinator-lease.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { DatabaseStatusSchema, GetStatusResponseSchema, NodeStatusSchema } from "../../gen/autonomy/ha/v1/admin_pb.js";
import type { ClusterReadiness } from "./cluster-readiness.js";
import type { LeaderView } from "../../core/model.js";
import { unknownReplication } from "../../core/model.js";
import { leaderToWire, nodeStatusToWire, replicationToWire, ts } from "../../rpc/wire.js";
import type { ClusterView, NodeState, ViewTiming } from "../view/cluster-view.js";
import { isFresh, nodeById } from "../view/cluster-view.js";

/** A node's role in words, as `autonomy ha status` prints it. */
export function roleText(n: NodeState | undefined): string {
  if (!n) return "unknown";
  if (!n.connected) return "disconnected";
  return n.report.role;
}

/** When the status is built: the coordinator's monotonic now judges report age, never a remote clock. */
export interface StatusClock {
  readonly timing: ViewTiming;
  readonly nowMs: number;
}

/** How long ago a node's last report arrived, and whether it stopped reporting. */
function freshness(n: NodeState, at: StatusClock): { stale: boolean; lastReportAgeMs: bigint } {
  return { stale: !isFresh(n, at.timing, at.nowMs), lastReportAgeMs: BigInt(Math.max(0, Math.round(at.nowMs - n.lastReportMs))) };
}

/**
 * A node's row. A node that stopped reporting claims nothing: its lock and
 * Write-Ready are false and `stale` says why, with the age of its last report.
 */
export function nodeStatus(n: NodeState, at: StatusClock): MessageInitShape<typeof NodeStatusSchema> {
  const f = freshness(n, at);
  const row = nodeStatusToWire(n.report, n.connected);
  return f.stale ? { ...row, sessionLockHeld: false, writeReady: false, ...f } : { ...row, ...f };
}

/**
 * Seed 000's status for one node (the leader unless another is asked for),
 * with the cluster's leader, the leader's quorum and replication, and a row per node.
 * Nothing is shown as current that comes from a node that stopped reporting.
 */
export function statusResponse(
  view: ClusterView,
  leader: LeaderView,
  nodeId: string,
  extra: { queriedAt: Date; splitBrain: boolean; database?: { readiness: ClusterReadiness; coordinatorRegion: string }; coordinator?: CoordinatorRole } & StatusClock,
): MessageInitShape<typeof GetStatusResponseSchema> {
  const subjectId = nodeId || leader.holderId;
  const subject = subjectId ? nodeById(view, subjectId) : undefined;
  const subjectFresh = subject ? freshness(subject, extra) : undefined;
  const leaderNode = leader.holderId ? nodeById(view, leader.holderId) : undefined;
  const leaderFresh = leaderNode ? freshness(leaderNode, extra) : undefined;
  // Quorum and replication are the leader's measures: without a leader, or
  // with one that stopped reporting, they are unknown, never a default.
  const unknownWhy = !leader.holderId
    ? "no leader"
    : !leaderNode
      ? `no report from leader ${leader.holderId}`
      : leaderFresh!.stale
        ? `leader ${leader.holderId} stopped reporting ${leaderFresh!.lastReportAgeMs}ms ago`
        : "";
  const repl = unknownWhy === "" ? leaderNode!.report.replication : unknownReplication;
  const quorum =
    unknownWhy === ""
      ? quorumOf(repl.syncReplicaCount, leaderNode!.report.minSyncReplicas)
      : { writeReady: false, syncReplicas: 0, minSyncReplicas: leaderNode?.report.minSyncReplicas ?? 0, unknownReason: unknownWhy };
  const claims = subject && !subjectFresh!.stale;
  return {
    clusterId: view.clusterId,
    nodeId: subjectId,
    role: subject ? roleText(subject) : "no leader",
    sessionLockHeld: claims ? subject.report.sessionLockHeld : false,
    writeReady: claims ? subject.report.writeReady : false,
    queriedAt: ts(extra.queriedAt),
    leader: leaderToWire(leader),
    quorum,
    replication: replicationToWire(repl),
    nodes: [...view.nodes].sort((a, b) => a.nodeId.localeCompare(b.nodeId)).map((n) => nodeStatus(n, extra)),
    maintenance: view.maintenance,
    splitBrainDetected: extra.splitBrain,
    answeredBy: "coordinator",
    databaseError: view.db && !view.db.reachable ? view.db.error || "unreachable" : "",
    ...(subjectFresh ?? {}),
    ...(extra.database ? { database: databaseStatus(extra.database.readiness, extra.database.coordinatorRegion) } : {}),
    ...(extra.coordinator
      ? {
          coordinator: {
            coordinatorId: extra.coordinator.coordinatorId,
            role: extra.coordinator.role,
            term: BigInt(extra.coordinator.term),
            activeId: extra.coordinator.activeId,
            activeUrl: extra.coordinator.activeUrl,
          },
        }
      : {}),
  };
}

/** The replication quorum for writes: the leader's sync replicas against its own required minimum. */
function quorumOf(syncReplicas: number, minSyncReplicas: number) {
  return { writeReady: syncReplicas >= minSyncReplicas, syncReplicas, minSyncReplicas };
}

/** The database side of the status: seed 004 §5 for `autonomy ha status`. */
export function databaseStatus(r: ClusterReadiness, coordinatorRegion: string): MessageInitShape<typeof DatabaseStatusSchema> {
  return {
    writesUsable: r.writesUsable,
    reason: r.reason,
    systemIdentifier: r.writer.systemIdentifier,
    timeline: r.writer.timeline,
    primaryHost: r.primaryHost,
    writerNode: r.writer.node,
    writerRegion: r.writer.region,
    highestEpoch: BigInt(r.highestEpoch),
    lastPromotionAt: ts(r.lastPromotion?.at),
    lastPromotionRtoMs: BigInt(r.lastPromotion?.rtoMs ?? 0),
    coordinatorRegion,
  };
}

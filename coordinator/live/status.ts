import type { MessageInitShape } from "@bufbuild/protobuf";
import type { GetStatusResponseSchema, NodeStatusSchema } from "../../gen/autonomy/ha/v1/admin_pb.js";
import type { LeaderView } from "../../core/model.js";
import { unknownReplication } from "../../core/model.js";
import { leaderToWire, nodeStatusToWire, replicationToWire, ts } from "../../rpc/wire.js";
import type { ClusterView, NodeState } from "../view/cluster-view.js";
import { nodeById } from "../view/cluster-view.js";

/** A node's role in words, as `autonomy ha status` prints it. */
export function roleText(n: NodeState | undefined): string {
  if (!n) return "unknown";
  if (!n.connected) return "disconnected";
  return n.report.role;
}

export function nodeStatus(n: NodeState): MessageInitShape<typeof NodeStatusSchema> {
  return nodeStatusToWire(n.report, n.connected);
}

/**
 * Seed 000's status for one node (the leader unless another is asked for),
 * with the cluster's leader, the leader's quorum and replication, and a row per node.
 */
export function statusResponse(
  view: ClusterView,
  leader: LeaderView,
  nodeId: string,
  extra: { queriedAt: Date; splitBrain: boolean },
): MessageInitShape<typeof GetStatusResponseSchema> {
  const subjectId = nodeId || leader.holderId;
  const subject = subjectId ? nodeById(view, subjectId) : undefined;
  const leaderNode = leader.holderId ? nodeById(view, leader.holderId) : undefined;
  const repl = leaderNode?.report.replication ?? unknownReplication;
  return {
    clusterId: view.clusterId,
    nodeId: subjectId,
    role: subject ? roleText(subject) : "no leader",
    sessionLockHeld: subject?.report.sessionLockHeld ?? false,
    writeReady: subject?.report.writeReady ?? false,
    queriedAt: ts(extra.queriedAt),
    leader: leaderToWire(leader),
    quorum: quorumOf(repl.syncReplicaCount, leaderNode?.report.minSyncReplicas ?? 0),
    replication: replicationToWire(repl),
    nodes: [...view.nodes].sort((a, b) => a.nodeId.localeCompare(b.nodeId)).map(nodeStatus),
    maintenance: view.maintenance,
    splitBrainDetected: extra.splitBrain,
    answeredBy: "coordinator",
    databaseError: view.db && !view.db.reachable ? view.db.error || "unreachable" : "",
  };
}

/** The replication quorum for writes: the leader's sync replicas against its own required minimum. */
function quorumOf(syncReplicas: number, minSyncReplicas: number) {
  return { writeReady: syncReplicas >= minSyncReplicas, syncReplicas, minSyncReplicas };
}

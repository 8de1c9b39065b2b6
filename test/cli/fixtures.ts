import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  DetectSplitBrainResponseSchema,
  GetStatusResponseSchema,
  NodeStatusSchema,
  RecoverSplitBrainResponseSchema,
  TriggerFailoverResponseSchema,
  type DetectSplitBrainResponse,
  type GetStatusResponse,
} from "../../gen/autonomy/ha/v1/admin_pb.js";
import { LagStatus, NodeRole } from "../../gen/autonomy/ha/v1/types_pb.js";

/* Wire answers shaped like the runbooks' examples, shared by formatter and CLI tests. */

export const at = (iso: string) => timestampFromDate(new Date(iso));

/** Seed 000 §1: the healthy leader cp-node-1 at epoch 7. */
export function seedStatus(): GetStatusResponse {
  return create(GetStatusResponseSchema, {
    clusterId: "default",
    nodeId: "cp-node-1",
    role: "leader",
    sessionLockHeld: true,
    writeReady: true,
    queriedAt: at("2026-03-18T10:00:00.456Z"),
    leader: { holderId: "cp-node-1", epoch: 7n, acquiredAt: at("2026-03-18T08:30:00Z"), writeReady: true },
    quorum: { writeReady: true, syncReplicas: 1, minSyncReplicas: 1 },
    replication: { lagStatus: LagStatus.OK, maxWriteLagSeconds: 0.012, maxReplayLagSeconds: 0.018, replicaCount: 1, syncReplicaCount: 1 },
    answeredBy: "coordinator",
  });
}

export const SEED_STATUS_TEXT = `Role:               leader
Session lock held:  true
Write-Ready:        true
Queried At:         2026-03-18T10:00:00Z

Leader
  Holder ID:        cp-node-1
  Epoch:            7
  Acquired At:      2026-03-18T08:30:00Z

Quorum
  Write-Ready:      true
  Sync Replicas:    1

Replication
  Lag Status:       ok
  Max Write Lag:    12ms
  Max Replay Lag:   18ms
  Replicas:         1
`;

export function statusWithNodes(): GetStatusResponse {
  const s = seedStatus();
  s.nodes = [
    {
      nodeId: "cp-node-1", role: NodeRole.LEADER, connected: true, sessionLockHeld: true, writeReady: true, epoch: 7n,
      priority: 100, lagStatus: LagStatus.OK, replayLagSeconds: 0,
    },
    {
      nodeId: "cp-node-2", role: NodeRole.FOLLOWER, connected: true, sessionLockHeld: false, writeReady: false, epoch: 0n,
      priority: 50, lagStatus: LagStatus.OK, replayLagSeconds: 0.018,
    },
    {
      nodeId: "cp-node-3", role: NodeRole.DISCONNECTED, connected: false, sessionLockHeld: false, writeReady: false, epoch: 0n,
      priority: 0, nofailover: true, lagStatus: LagStatus.WARN, replayLagSeconds: 6.5,
    },
  ].map((n) => create(NodeStatusSchema, n));
  return s;
}

/** Seed 000 §2. */
export const seedFailover = () =>
  create(TriggerFailoverResponseSchema, {
    success: true,
    previousHolder: "cp-node-1",
    previousEpoch: 7n,
    resignedAt: at("2026-03-18T10:05:00Z"),
    message: "leader resigned gracefully; successor will campaign for epoch 8",
  });

/** Seed 002 §1, with our extra criteria after the seed's three. */
export function seedDetect(): DetectSplitBrainResponse {
  return create(DetectSplitBrainResponseSchema, {
    splitBrainDetected: true,
    detectedAt: at("2026-03-18T11:00:00Z"),
    epochDivergence: true,
    holderMismatch: true,
    unclosedEpochs: 2,
    criteria: [
      { name: "multiple_lock_holders", detected: false, detail: "" },
      { name: "epoch_divergence", detected: true, detail: "node-1 reports epoch 8; node-2 reports epoch 8" },
      { name: "holder_mismatch", detected: true, detail: "lock held by node-2; leadership_state.holder_id = node-1" },
      { name: "unclosed_epochs", detected: true, detail: "2 epochs have resigned_at = NULL" },
      { name: "multiple_writable_primaries", detected: false, detail: "at most one writable primary" },
      { name: "multiple_write_ready", detected: true, detail: "node-1, node-2 all report Write-Ready" },
    ],
    explanation:
      "node-1 started epoch 8 but crashed before writing resigned_at.\nnode-2 campaigned and also acquired epoch 8 (epoch counter not yet incremented).",
    checkedAt: at("2026-03-18T11:00:01Z"),
  });
}

/** Seed 002 §3. */
export const seedRecover = () =>
  create(RecoverSplitBrainResponseSchema, {
    success: true,
    strategy: "promote-leader",
    recoveredAt: at("2026-03-18T11:10:00Z"),
    message: "stale leader resigned; node-2 confirmed as leader for epoch 9",
  });

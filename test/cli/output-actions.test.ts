import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { textOf } from "../../cli/output/format.js";
import { failoverJson, failoverText } from "../../cli/output/failover.js";
import { detectJson, detectText, recoverJson, recoverText } from "../../cli/output/split-brain.js";
import { maintenanceJson, maintenanceText } from "../../cli/output/maintenance.js";
import { historyJson, historyText } from "../../cli/output/history.js";
import { watchJson, watchText } from "../../cli/output/watch.js";
import { DetectSplitBrainResponseSchema, EpochRecordSchema, SetMaintenanceResponseSchema } from "../../gen/autonomy/ha/v1/admin_pb.js";
import { LeaderEventKind, WatchLeaderResponseSchema } from "../../gen/autonomy/ha/v1/leader_pb.js";
import { at, seedDetect, seedFailover, seedRecover } from "./fixtures.js";

describe("ha failover trigger output", () => {
  it("prints runbook 000 §2's block exactly", () => {
    expect(textOf(failoverText(seedFailover()))).toBe(`Failover triggered
  Previous Holder: cp-node-1
  Previous Epoch:  7
  Resigned At:     2026-03-18T10:05:00Z
  Message:         leader resigned gracefully; successor will campaign for epoch 8
`);
  });

  it("adds the new holder and epoch, aligned, when the server confirmed them", () => {
    const r = seedFailover();
    r.newHolder = "cp-node-2";
    r.newEpoch = 8n;
    expect(failoverText(r).slice(3, 6)).toEqual([
      "  Resigned At:     2026-03-18T10:05:00Z",
      "  New Holder:      cp-node-2",
      "  New Epoch:       8",
    ]);
  });

  it("answers runbook 000's JSON fields in its order, then ours", () => {
    const json = failoverJson(seedFailover());
    expect(Object.keys(json).slice(0, 5)).toEqual(["success", "previous_holder", "previous_epoch", "resigned_at", "message"]);
    expect(json).toMatchObject({
      success: true,
      previous_holder: "cp-node-1",
      previous_epoch: 7,
      resigned_at: "2026-03-18T10:05:00Z",
      message: "leader resigned gracefully; successor will campaign for epoch 8",
    });
  });
});

describe("ha split-brain output", () => {
  it("prints runbook 002 §1's block, the seed's criteria first, aligned at one column", () => {
    expect(textOf(detectText(seedDetect()))).toBe(`Split-Brain Status
  Split-Brain Detected: true
  Detected At:          2026-03-18T11:00:00Z

Criteria
  Epoch Divergence:     true (node-1 reports epoch 8; node-2 reports epoch 8)
  Holder Mismatch:      true (lock held by node-2; leadership_state.holder_id = node-1)
  Unclosed Epochs:      true (2 epochs have resigned_at = NULL)
  Multiple Holders:     false
  Multiple Write-Ready: true (node-1, node-2 all report Write-Ready)
  Multiple Primaries:   false (at most one writable primary)

Explanation:
  node-1 started epoch 8 but crashed before writing resigned_at.
  node-2 campaigned and also acquired epoch 8 (epoch counter not yet incremented).
`);
  });

  it("says false for every criterion when none holds, even without a criteria list", () => {
    const healthy = create(DetectSplitBrainResponseSchema, { unclosedEpochs: 1 });
    expect(detectText(healthy)).toEqual([
      "Split-Brain Status",
      "  Split-Brain Detected: false",
      "  Detected At:          -",
      "",
      "Criteria",
      "  Epoch Divergence:     false",
      "  Holder Mismatch:      false",
      "  Unclosed Epochs:      false",
    ]);
    expect(detectJson(healthy)).toEqual({
      split_brain_detected: false,
      detected_at: null,
      epoch_divergence: false,
      holder_mismatch: false,
      unclosed_epochs: 1,
      criteria: [
        { name: "epoch_divergence", detected: false, detail: "" },
        { name: "holder_mismatch", detected: false, detail: "" },
        { name: "unclosed_epochs", detected: false, detail: "" },
      ],
    });
  });

  it("answers runbook 002's JSON fields with unclosed_epochs as the count", () => {
    const json = detectJson(seedDetect());
    expect(Object.keys(json)).toEqual(["split_brain_detected", "detected_at", "epoch_divergence", "holder_mismatch", "unclosed_epochs", "criteria"]);
    expect(json).toMatchObject({ split_brain_detected: true, detected_at: "2026-03-18T11:00:00Z", epoch_divergence: true, holder_mismatch: true, unclosed_epochs: 2 });
    expect(json.criteria.map((c) => c.name)).toEqual([
      "epoch_divergence",
      "holder_mismatch",
      "unclosed_epochs",
      "multiple_lock_holders",
      "multiple_write_ready",
      "multiple_writable_primaries",
    ]);
  });

  it("prints runbook 002 §3's recovery block exactly", () => {
    expect(textOf(recoverText(seedRecover()))).toBe(`Split-Brain Recovery
  Strategy:     promote-leader
  Recovered At: 2026-03-18T11:10:00Z
  Message:      stale leader resigned; node-2 confirmed as leader for epoch 9
`);
    const r = seedRecover();
    r.leaderId = "node-2";
    r.epoch = 9n;
    r.resignedNodes = ["node-1"];
    expect(recoverText(r).slice(3, 6)).toEqual(["  Leader:       node-2", "  Epoch:        9", "  Resigned:     node-1"]);
    expect(recoverJson(r)).toMatchObject({ success: true, strategy: "promote-leader", recovered_at: "2026-03-18T11:10:00Z", leader_id: "node-2", epoch: 9 });
  });
});

describe("ha pause/resume, history and watch output", () => {
  it("says which mode the cluster is in", () => {
    const r = create(SetMaintenanceResponseSchema, { paused: true, message: "automatic actions paused by alice", changedAt: at("2026-03-18T12:00:00Z") });
    expect(maintenanceText(r)).toEqual([
      "Maintenance mode on: automatic actions paused",
      "  Paused:     true",
      "  Changed At: 2026-03-18T12:00:00Z",
      "  Message:    automatic actions paused by alice",
    ]);
    expect(maintenanceJson(r)).toEqual({ paused: true, changed_at: "2026-03-18T12:00:00Z", message: "automatic actions paused by alice" });
  });

  it("lists epochs newest first, each with the action that opened it and the one that ended it, the open one marked", () => {
    const epochs = [
      create(EpochRecordSchema, {
        epoch: 8n, holderId: "cp-node-2", acquiredAt: at("2026-03-18T10:05:01Z"), operator: "alice", reason: "planned maintenance", openedBy: "ha.failover.completed",
      }),
      create(EpochRecordSchema, {
        epoch: 7n, holderId: "cp-node-1", acquiredAt: at("2026-03-18T08:30:00Z"), resignedAt: at("2026-03-18T10:05:00Z"), endReason: "resigned",
        endedBy: "ha.failover.completed", endOperator: "alice", endActionReason: "planned maintenance",
      }),
    ];
    expect(historyText(epochs)).toEqual([
      "EPOCH  HOLDER     ACQUIRED              RESIGNED              END REASON",
      "8      cp-node-2  2026-03-18T10:05:01Z  (open)                -",
      "    opened by failover (alice): planned maintenance",
      "7      cp-node-1  2026-03-18T08:30:00Z  2026-03-18T10:05:00Z  resigned",
      "    ended by failover (alice): planned maintenance",
    ]);
    expect(historyJson(epochs)).toEqual([
      {
        epoch: 8, holder_id: "cp-node-2", acquired_at: "2026-03-18T10:05:01Z", resigned_at: null, end_reason: "",
        opened_by: "ha.failover.completed", operator: "alice", reason: "planned maintenance", ended_by: null, end_operator: "", end_action_reason: "",
      },
      {
        epoch: 7, holder_id: "cp-node-1", acquired_at: "2026-03-18T08:30:00Z", resigned_at: "2026-03-18T10:05:00Z", end_reason: "resigned",
        opened_by: null, operator: "", reason: "", ended_by: "ha.failover.completed", end_operator: "alice", end_action_reason: "planned maintenance",
      },
    ]);
    expect(historyText([])).toEqual(["No epochs recorded yet: no node has ever held write authority."]);
  });

  it("prints one line per leader event with revision, time, kind, holder, epoch, write-ready and message", () => {
    const e = create(WatchLeaderResponseSchema, {
      revision: 12n,
      kind: LeaderEventKind.LEADER_CHANGED,
      leader: { holderId: "cp-node-2", epoch: 8n, writeReady: true },
      at: at("2026-03-18T10:05:01Z"),
      message: "cp-node-2 leads\nepoch 8",
    });
    expect(watchText(e)).toBe("#12    2026-03-18T10:05:01Z leader_changed       holder=cp-node-2     epoch=8    write-ready=true  cp-node-2 leads epoch 8");
    expect(watchJson(e)).toEqual({
      revision: 12, at: "2026-03-18T10:05:01Z", kind: "leader_changed", holder_id: "cp-node-2", epoch: 8, write_ready: true, acquired_at: null,
      message: "cp-node-2 leads\nepoch 8",
    });
  });
});

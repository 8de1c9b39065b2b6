import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { GetStatusResponseSchema } from "../../gen/autonomy/ha/v1/admin_pb.js";
import { LagStatus, NodeRole } from "../../gen/autonomy/ha/v1/types_pb.js";
import { redraw, renderLiveView } from "./live-view.js";

const now = new Date("2026-03-18T10:00:05Z");

function status() {
  return create(GetStatusResponseSchema, {
    leader: { holderId: "cp-node-1", epoch: 7n, writeReady: true },
    nodes: [
      { nodeId: "cp-node-1", role: NodeRole.LEADER, connected: true, epoch: 7n, lagStatus: LagStatus.OK, replayLagSeconds: 0 },
      { nodeId: "cp-node-2", role: NodeRole.FOLLOWER, connected: true, lagStatus: LagStatus.WARN, replayLagSeconds: 6.5 },
      { nodeId: "cp-node-3", role: NodeRole.DISCONNECTED, connected: false, lagStatus: LagStatus.OK },
    ],
  });
}

describe("the autonomy dev live view", () => {
  it("shows leader, epoch, a row per node, the workload and the recent events", () => {
    const lines = renderLiveView(
      {
        status: status(),
        counters: { written: 12, staleRejected: 1 },
        events: [{ at: new Date("2026-03-18T10:00:01Z"), kind: "snapshot", message: "cp-node-1 leads epoch 7" }],
      },
      now,
    );
    expect(lines).toEqual([
      "autonomy dev · 10:00:05 · leader cp-node-1, epoch 7, Write-Ready · no split-brain",
      "",
      "  NODE       ROLE          EPOCH  LAG        HEALTH      CONNECTED",
      "  cp-node-1  leader        7      ok 0ms     ok          yes",
      "  cp-node-2  follower      -      warn 6.5s  lag warn    yes",
      "  cp-node-3  disconnected  -      ok 0ms     no reports  no",
      "",
      "  workload: fenced writes 12, stale-epoch rejections 1",
      "",
      "Recent events:",
      "  10:00:01  snapshot              cp-node-1 leads epoch 7",
      "",
      "Ctrl-C stops it all.",
    ]);
  });

  it("says when there is no leader, a split-brain, or no answer yet, and keeps only the last events", () => {
    const s = status();
    s.leader = undefined;
    s.splitBrainDetected = true;
    expect(renderLiveView({ status: s, events: [] }, now)[0]).toBe("autonomy dev · 10:00:05 · no leader · SPLIT-BRAIN DETECTED");
    const events = Array.from({ length: 8 }, (_, i) => ({ at: now, kind: "leader_changed", message: `event ${i}` }));
    const waiting = renderLiveView({ statusError: "connect ECONNREFUSED", events }, now);
    expect(waiting[0]).toBe("autonomy dev · 10:00:05 · waiting for the coordinator");
    expect(waiting[1]).toBe("  status: connect ECONNREFUSED");
    expect(waiting.filter((l) => l.includes("event "))).toHaveLength(5);
    expect(waiting.some((l) => l.includes("event 7"))).toBe(true);
  });

  it("keeps a node id from rewriting the screen", () => {
    const s = status();
    s.nodes[0]!.nodeId = "evil\x1b[2J";
    expect(renderLiveView({ status: s, events: [] }, now).join("\n")).not.toContain("\x1b");
  });

  it("redraws over the previous frame", () => {
    expect(redraw(0, ["a", "b"])).toBe("a\nb\n");
    expect(redraw(2, ["c"])).toBe("\x1b[2F\x1b[Jc\n");
  });
});

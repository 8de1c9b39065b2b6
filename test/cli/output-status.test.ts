import { describe, expect, it } from "vitest";
import { statusJson, statusText } from "../../cli/output/status.js";
import { textOf } from "../../cli/output/format.js";
import { LagStatus } from "../../gen/autonomy/ha/v1/types_pb.js";
import { SEED_STATUS_TEXT, seedStatus, statusWithNodes } from "./fixtures.js";

describe("ha status output", () => {
  it("prints runbook 000's status block exactly, given the same answer", () => {
    expect(textOf(statusText(seedStatus()))).toBe(SEED_STATUS_TEXT);
  });

  it("keeps the runbook's blocks first and unchanged when nodes, maintenance and split-brain are added after them", () => {
    const s = statusWithNodes();
    s.maintenance = true;
    s.splitBrainDetected = true;
    const lines = statusText(s);
    expect(lines.slice(0, 19)).toEqual(SEED_STATUS_TEXT.trimEnd().split("\n"));
    expect(lines.slice(19)).toEqual([
      "",
      "Nodes",
      "  NODE       ROLE          LOCK   WRITE-READY  EPOCH  PRIORITY        LAG        CONNECTED",
      "  cp-node-1  leader        true   true         7      100             ok 0ms     true",
      "  cp-node-2  follower      false  false        -      50              ok 18ms    true",
      "  cp-node-3  disconnected  stale  stale        -      0 (nofailover)  warn 6.5s  false",
      "",
      'Maintenance:        paused: no automatic failover or recovery ("autonomy ha resume" ends it)',
      'Split-Brain:        DETECTED: run "autonomy ha split-brain detect" for the evidence',
    ]);
  });

  it.each([
    { name: "critical lag in seconds", lag: LagStatus.CRITICAL, write: 10.2, replay: 12.5, want: ["  Lag Status:       critical", "  Max Write Lag:    10.2s", "  Max Replay Lag:   12.5s"] },
    { name: "unmeasured lag", lag: LagStatus.UNSPECIFIED, write: 0, replay: 0, want: ["  Lag Status:       unknown", "  Max Write Lag:    unknown", "  Max Replay Lag:   unknown"] },
  ])("prints $name as the runbook does", ({ lag, write, replay, want }) => {
    const s = seedStatus();
    s.replication!.lagStatus = lag;
    s.replication!.maxWriteLagSeconds = write;
    s.replication!.maxReplayLagSeconds = replay;
    expect(statusText(s).slice(15, 18)).toEqual(want);
  });

  it("says none and - when nobody leads", () => {
    const s = seedStatus();
    s.role = "follower";
    s.sessionLockHeld = false;
    s.leader = undefined;
    const lines = statusText(s);
    expect(lines[0]).toBe("Role:               follower");
    expect(lines.slice(5, 9)).toEqual(["Leader", "  Holder ID:        none", "  Epoch:            0", "  Acquired At:      -"]);
  });

  it("never shows a claim of a node that stopped reporting: stale with the age of its last report", () => {
    const s = statusWithNodes();
    const [leader, follower, gone] = s.nodes;
    leader!.stale = true;
    leader!.sessionLockHeld = false;
    leader!.writeReady = false;
    leader!.lastReportAgeMs = 31_400n;
    gone!.lastReportAgeMs = 420_000n;
    follower!.lagStatus = LagStatus.UNSPECIFIED;
    follower!.replayLagSeconds = 0;
    s.stale = true;
    s.sessionLockHeld = false;
    s.writeReady = false;
    s.lastReportAgeMs = 31_400n;
    const lines = statusText(s);
    expect(lines.slice(1, 3)).toEqual(["Session lock held:  stale 31s", "Write-Ready:        stale 31s"]);
    expect(lines.slice(22, 25)).toEqual([
      "  cp-node-1  leader        stale 31s  stale 31s    7      100             ok 0ms     true",
      "  cp-node-2  follower      false      false        -      50              unknown    true",
      "  cp-node-3  disconnected  stale 7m   stale 7m     -      0 (nofailover)  warn 6.5s  false",
    ]);
    const json = statusJson(s);
    expect(json).toMatchObject({ session_lock_held: false, write_ready: false, stale: true, last_report_age_ms: 31_400 });
    expect(json.nodes.map((n) => [n.node_id, n.session_lock_held, n.stale, n.last_report_age_ms, n.replay_lag])).toEqual([
      ["cp-node-1", false, true, 31_400, "0ms"],
      ["cp-node-2", false, false, 0, "unknown"],
      ["cp-node-3", false, true, 420_000, "6.5s"],
    ]);
  });

  it("says the quorum is not Write-Ready when there is no leader, and why", () => {
    const s = seedStatus();
    s.quorum = { ...s.quorum!, writeReady: false, syncReplicas: 0, unknownReason: "no leader" };
    expect(statusText(s).slice(10, 13)).toEqual(["Quorum", "  Write-Ready:      false (no leader)", "  Sync Replicas:    0"]);
    expect(statusJson(s).quorum).toMatchObject({ write_ready: false, sync_replicas: 0, unknown_reason: "no leader" });
  });

  it("answers the runbook's field names in JSON, lags as text and as seconds", () => {
    const json = statusJson(statusWithNodes());
    expect(json).toMatchObject({
      role: "leader",
      session_lock_held: true,
      write_ready: true,
      queried_at: "2026-03-18T10:00:00Z",
      leader: { holder_id: "cp-node-1", epoch: 7, acquired_at: "2026-03-18T08:30:00Z" },
      quorum: { write_ready: true, sync_replicas: 1 },
      replication: { lag_status: "ok", max_write_lag: "12ms", max_replay_lag: "18ms", max_replay_lag_seconds: 0.018, replicas: 1 },
      maintenance: false,
    });
    expect(json.nodes[2]).toMatchObject({ node_id: "cp-node-3", role: "disconnected", connected: false, nofailover: true, replay_lag: "6.5s" });
    expect(() => JSON.stringify(json)).not.toThrow();
  });
});

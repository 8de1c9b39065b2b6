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
      "  cp-node-3  disconnected  false  false        -      0 (nofailover)  warn 6.5s  false",
      "",
      'Maintenance:        paused: no automatic failover or recovery ("autonomy ha resume" ends it)',
      'Split-Brain:        DETECTED: run "autonomy ha split-brain detect" for the evidence',
    ]);
  });

  it.each([
    { name: "critical lag in seconds", lag: LagStatus.CRITICAL, write: 10.2, replay: 12.5, want: ["  Lag Status:       critical", "  Max Write Lag:    10.2s", "  Max Replay Lag:   12.5s"] },
    { name: "unmeasured lag", lag: LagStatus.UNSPECIFIED, write: 0, replay: 0, want: ["  Lag Status:       unknown", "  Max Write Lag:    0ms", "  Max Replay Lag:   0ms"] },
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

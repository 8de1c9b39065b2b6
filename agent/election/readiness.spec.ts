import { describe, expect, it } from "vitest";
import { roleOf, type ElectionState } from "./election-state.js";
import { shouldTakeOver } from "./hung-leader.js";
import { watchHeartbeat } from "./leader-observer.js";
import { COORDINATED_CAMPAIGN_MS, coordinatedCampaignIntervalMs, leaseLeftMs, lockAuthority, writeReadiness, type Term } from "./readiness.js";

const term: Term = { epoch: 7, acquiredAt: new Date(0), confirmedAtMs: 1_000, heartbeatAt: undefined };
const base = { term, sessionAlive: true, nowMs: 1_500, leaseMs: 3_000, syncReplicas: 1, minSyncReplicas: 0 };

describe("writeReadiness", () => {
  it.each([
    ["a confirmed leader within its lease is ready", base, true, ""],
    ["a follower is not ready", { ...base, term: undefined }, false, "not the leader"],
    ["a leader whose session died is not ready", { ...base, sessionAlive: false }, false, "lock session lost"],
    ["a leader past its lease has fenced itself", { ...base, nowMs: 4_000 }, false, "lock session unconfirmed for 3000ms (lease 3000ms): fenced"],
    ["a leader short of sync replicas is not ready", { ...base, syncReplicas: 0, minSyncReplicas: 1 }, false, "0 sync replicas, 1 required"],
  ])("%s", (_name, input, ready, reason) => {
    expect(writeReadiness(input)).toEqual({ ready, reason });
  });
});

describe("the lease rule (one rule for the snapshot's lock claim, readiness and the fence)", () => {
  it.each([
    ["1ms before the deadline the lock is still ours", 3_999, true, 1],
    ["at the deadline it is not", 4_000, false, 0],
    ["long after it, it is not", 60_000, false, -56_000],
  ])("%s", (_name, nowMs, held, left) => {
    expect(lockAuthority({ term, sessionAlive: true, nowMs, leaseMs: 3_000 }).ready).toBe(held);
    expect(leaseLeftMs(term, nowMs, 3_000)).toBe(left);
  });

  it("the sync-replica quorum does not take the lock claim away, only Write-Ready", () => {
    const input = { ...base, syncReplicas: 0, minSyncReplicas: 1 };
    expect(lockAuthority(input).ready).toBe(true);
    expect(writeReadiness(input).ready).toBe(false);
  });
});

describe("roleOf", () => {
  const leader: ElectionState = { kind: "leader", term };
  it.each([
    [leader, true, "leader"],
    [leader, false, "leader"],
    [{ kind: "fenced", epoch: 7 }, false, "fenced"],
    [{ kind: "follower" }, false, "disconnected"],
    [{ kind: "held" }, false, "disconnected"],
    [{ kind: "held" }, true, "held"],
    [{ kind: "follower" }, true, "follower"],
  ] as [ElectionState, boolean, string][])("%o with a live session %s is %s", (state, sessionAlive, role) => {
    expect(roleOf(state, sessionAlive)).toBe(role);
  });
});

describe("a follower's own campaign interval", () => {
  it("leaves the choice to a connected coordinator and is a backstop only", () => {
    expect(coordinatedCampaignIntervalMs(200)).toBe(COORDINATED_CAMPAIGN_MS);
    expect(coordinatedCampaignIntervalMs(5_000)).toBe(5_000);
  });
});

describe("hung-leader takeover", () => {
  const input = { nowMs: 0, takeoverAfterMs: 30_000, lockHolder: "cp-node-1", self: "cp-node-2", mayLead: true };

  it("judges the heartbeat by when we saw it move, not by its timestamp", () => {
    const w1 = watchHeartbeat(undefined, "pid|cp-node-1|7|1000", 0);
    const w2 = watchHeartbeat(w1, "pid|cp-node-1|7|1000", 20_000);
    expect(w2.sinceMs).toBe(0);
    const w3 = watchHeartbeat(w2, "pid|cp-node-1|7|1500", 25_000);
    expect(w3.sinceMs).toBe(25_000);
  });

  it.each([
    ["a heartbeat frozen past the limit is taken over", { watch: { key: "k", sinceMs: 0 }, nowMs: 30_001 }, true],
    ["a slow leader still inside the limit is left alone", { watch: { key: "k", sinceMs: 0 }, nowMs: 29_999 }, false],
    ["nobody holds the lock: just campaign", { watch: { key: "k", sinceMs: 0 }, nowMs: 60_000, lockHolder: undefined }, false],
    ["we hold the lock ourselves", { watch: { key: "k", sinceMs: 0 }, nowMs: 60_000, lockHolder: "cp-node-2" }, false],
    ["a held or nofailover node never takes over", { watch: { key: "k", sinceMs: 0 }, nowMs: 60_000, mayLead: false }, false],
  ])("%s", (_name, overrides, expected) => {
    expect(shouldTakeOver({ ...input, ...overrides })).toBe(expected);
  });
});

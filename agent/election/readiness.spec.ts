import { describe, expect, it } from "vitest";
import { COORDINATED_CAMPAIGN_MS, roleOf, selfCampaignIntervalMs, shouldTakeOver, watchHeartbeat, writeReadiness, type Term } from "./readiness.js";

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

describe("roleOf", () => {
  it.each([
    [{ term, sessionAlive: true, held: false, fenced: false }, "leader"],
    [{ term: undefined, sessionAlive: true, held: false, fenced: true }, "fenced"],
    [{ term: undefined, sessionAlive: false, held: false, fenced: false }, "disconnected"],
    [{ term: undefined, sessionAlive: true, held: true, fenced: false }, "held"],
    [{ term: undefined, sessionAlive: true, held: false, fenced: false }, "follower"],
  ] as const)("%o is %s", (input, role) => {
    expect(roleOf(input)).toBe(role);
  });
});

describe("a follower's own campaign interval", () => {
  it("leaves the choice to a connected coordinator and is a backstop only", () => {
    expect(selfCampaignIntervalMs(200, false)).toBe(200);
    expect(selfCampaignIntervalMs(200, true)).toBe(COORDINATED_CAMPAIGN_MS);
    expect(selfCampaignIntervalMs(5_000, true)).toBe(5_000);
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

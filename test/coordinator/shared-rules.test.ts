import { describe, expect, it } from "vitest";
import { classifyLag, judgeLag, worseLag } from "../../core/lag.js";
import { sameLockDatabase } from "../../core/lock-database.js";
import { makePolicy } from "../../coordinator/config.js";
import { candidateOf, ineligibility } from "../../coordinator/decide/successor.js";
import { leaseFinding } from "../../coordinator/detect/lease.js";
import { onDatabase } from "../../coordinator/view/cluster-view.js";
import { DB_ID, followerReport, healthyCluster, localDb, node, onLockDatabase } from "../../coordinator/view/builders.js";

const NOW = 100_000;
const policy = makePolicy({ lagWarnSeconds: 2, lagCriticalSeconds: 10, failureTimeoutMs: 30_000 });

describe("one lag classifier for agents and coordinator", () => {
  it.each([
    [undefined, "unknown"],
    [0, "ok"],
    [2, "ok"],
    [2.5, "warn"],
    [10, "warn"],
    [10.1, "critical"],
  ] as const)("lag %s s is %s with warn 2s, critical 10s", (lag, status) => {
    expect(classifyLag(lag, 2, 10)).toBe(status);
  });

  it("the coordinator keeps the worse of the reporter's status and its own judgement", () => {
    expect(judgeLag("ok", 12, { warnSeconds: 2, criticalSeconds: 10 })).toBe("critical");
    expect(judgeLag("critical", 1, { warnSeconds: 2, criticalSeconds: 10 })).toBe("critical");
    expect(worseLag("unknown", "ok")).toBe("ok");
  });

  it("a candidate's lag is judged with the coordinator's thresholds even when its agent said ok", () => {
    const n = node(followerReport("cp-node-2", "cp-node-1", 7, { localDatabase: localDb({ replayLagSeconds: 12, lagStatus: "ok" }) }), NOW);
    expect(candidateOf(n, policy).lagStatus).toBe("critical");
  });
});

describe("lock database identity is compared as typed fields", () => {
  it("same server and timeline only", () => {
    expect(sameLockDatabase({ systemIdentifier: "1", timeline: 2 }, { systemIdentifier: "1", timeline: 2 })).toBe(true);
    expect(sameLockDatabase({ systemIdentifier: "1", timeline: 2 }, { systemIdentifier: "1", timeline: 3 })).toBe(false);
    expect(sameLockDatabase({ systemIdentifier: "12", timeline: 1 }, { systemIdentifier: "1", timeline: 12 })).toBe(false);
    expect(sameLockDatabase(undefined, { systemIdentifier: "1", timeline: 2 })).toBeUndefined();
  });

  it("a node that did not report its identity is on an unknown database, whatever its display text says", () => {
    expect(onDatabase(undefined, DB_ID)).toBeUndefined();
    expect(onDatabase(onLockDatabase(DB_ID.systemIdentifier, DB_ID.timeline).lockDatabase, DB_ID)).toBe(true);
  });
});

describe("one eligibility rule for the automatic choice and an operator's --target", () => {
  const view = healthyCluster(NOW);
  const rule = { allowHeld: true, lockDatabase: { systemIdentifier: DB_ID.systemIdentifier, timeline: DB_ID.timeline } };
  it.each([
    ["fenced", { role: "fenced" as const }, "fenced"],
    ["holding the lock", { sessionLockHeld: true }, "holds_lock"],
    ["on another lock database", onLockDatabase(DB_ID.systemIdentifier, 2), "other_database"],
    ["nofailover", { nofailover: true }, "nofailover"],
    ["unable to reach the lock database", { databaseError: "connection refused" }, "database_unreachable"],
  ])("a target %s is refused", (_what, overrides, code) => {
    const n = node(followerReport("cp-node-2", "cp-node-1", 7, overrides), NOW);
    expect(ineligibility(n, view, policy, NOW, rule)?.code).toBe(code);
  });

  it("a held node may be named by an operator but not chosen automatically", () => {
    const n = node(followerReport("cp-node-2", "cp-node-1", 7, { role: "held", held: true }), NOW);
    expect(ineligibility(n, view, policy, NOW, rule)).toBeUndefined();
    expect(ineligibility(n, view, policy, NOW, { ...rule, allowHeld: false })?.code).toBe("held");
  });
});

describe("lease against failure timeout", () => {
  it("a lease not below the failure timeout is a finding that says which relation failed", () => {
    const long = node(followerReport("cp-node-2", "cp-node-1", 7, { leaseMs: 30_000 }), NOW);
    expect(leaseFinding(long, policy)?.detail).toMatch(/cp-node-2 runs with --lease 30000ms, not below the coordinator's --failure-timeout 30000ms/);
  });

  it("a shorter lease, or none reported (an older agent), is no finding", () => {
    expect(leaseFinding(node(followerReport("cp-node-2", "cp-node-1", 7, { leaseMs: 3_000 }), NOW), policy)).toBeUndefined();
    expect(leaseFinding(node(followerReport("cp-node-2", "cp-node-1", 7, { leaseMs: 0 }), NOW), policy)).toBeUndefined();
  });
});

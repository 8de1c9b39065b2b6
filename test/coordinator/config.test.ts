import { describe, expect, it } from "vitest";
import { makePolicy } from "../../coordinator/config.js";

describe("coordinator policy is validated at construction, naming the relation that failed", () => {
  const cases: [string, Parameters<typeof makePolicy>[0], string][] = [
    ["lag thresholds", { lagWarnSeconds: 20, lagCriticalSeconds: 10 }, "lag-critical (10s) must be greater than lag-warn (20s)"],
    ["failure timeout vs poll", { failureTimeoutMs: 300, pollIntervalMs: 200 }, "failure-timeout (300ms) must be greater than twice poll-interval (200ms)"],
    ["staleness vs failure timeout", { reportStaleAfterMs: 40_000 }, "report-stale-after (40000ms) must not exceed failure-timeout (2500ms)"],
    ["negative cooldown", { failoverCooldownMs: -1 }, "failover-cooldown must not be negative, got -1"],
    ["zero poll", { pollIntervalMs: 0 }, "poll-interval must be greater than 0, got 0"],
    ["cluster id", { clusterId: "bad id" }, 'cluster id "bad id" must be 1-63 letters'],
  ];
  for (const [name, overrides, message] of cases) {
    it(name, () => expect(() => makePolicy(overrides)).toThrow(message));
  }
  it("defaults are valid: a hung leader replaced in about 2 s, a node silent for 2 s no longer counts", () => {
    expect(makePolicy()).toMatchObject({ autoFailover: true, failureTimeoutMs: 2_500, reportStaleAfterMs: 2_000, autoRecoverSplitBrain: false, lagWarnSeconds: 5, lagCriticalSeconds: 10 });
  });
});

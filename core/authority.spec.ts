import { describe, expect, it } from "vitest";
import { AuthorityTracker, compareStanding, type ServerStanding } from "./authority.js";

const at = (timeline: number, stamp = 0, systemIdentifier = "7300"): ServerStanding => ({ systemIdentifier, timeline, stamp });

describe("server standing", () => {
  it("orders by timeline, then by stamp", () => {
    expect(compareStanding(at(2, 0), at(1, 50))).toBeGreaterThan(0);
    expect(compareStanding(at(2, 9), at(2, 12))).toBeLessThan(0);
    expect(compareStanding(at(2, 9), at(2, 9))).toBe(0);
  });

  it("a server behind the highest standing of its system is superseded; the highest never falls", () => {
    const t = new AuthorityTracker();
    expect(t.observe(at(1)).raised).toBe(true);
    expect(t.supersededBy(at(1))).toBeUndefined();
    expect(t.observe(at(2, 8)).raised).toBe(true);
    expect(t.supersededBy(at(1))).toEqual(at(2, 8));
    expect(t.supersededReason(at(1))).toMatch(/timeline 2/);
    // The zombie seen again does not lower it.
    expect(t.observe(at(1, 40)).raised).toBe(false);
    expect(t.highestOf("7300")).toEqual(at(2, 8));
    // Two promotions onto the same timeline: the later stamp wins.
    t.observe(at(2, 11));
    expect(t.supersededReason(at(2, 8))).toMatch(/stamp \(11\)/);
  });

  it("another system (a fresh initdb) is judged on its own", () => {
    const t = new AuthorityTracker();
    t.observe(at(5, 3, "A"));
    expect(t.supersededBy(at(1, 0, "B"))).toBeUndefined();
    expect(t.supersededBy(undefined)).toBeUndefined();
  });
});

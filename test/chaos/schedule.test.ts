import { describe, expect, it } from "vitest";
import { FAULT_KINDS } from "../../chaos/faults.js";
import { seededRng } from "../../chaos/rng.js";
import { buildSchedule, describeSchedule, LEAD_IN_MS } from "../../chaos/schedule.js";

const all = { durationMs: 60_000, faults: FAULT_KINDS, nodes: 3 };

describe("the chaos schedule", () => {
  it("is the same for the same seed", () => {
    expect(buildSchedule({ seed: 42, ...all })).toEqual(buildSchedule({ seed: 42, ...all }));
    expect(describeSchedule(buildSchedule({ seed: 42, ...all }))).toBe(describeSchedule(buildSchedule({ seed: 42, ...all })));
  });

  it("differs between seeds", () => {
    expect(describeSchedule(buildSchedule({ seed: 1, ...all }))).not.toBe(describeSchedule(buildSchedule({ seed: 2, ...all })));
  });

  it("keeps every fault, healed and settled, inside the duration, one after another", () => {
    for (let seed = 0; seed < 200; seed++) {
      const faults = buildSchedule({ seed, ...all });
      expect(faults.length).toBeGreaterThan(4);
      expect(faults[0]!.atMs).toBe(LEAD_IN_MS);
      for (let i = 0; i < faults.length; i++) {
        const f = faults[i]!;
        expect(f.atMs + f.durationMs).toBeLessThanOrEqual(all.durationMs);
        if (i > 0) expect(f.atMs).toBeGreaterThan(faults[i - 1]!.atMs + faults[i - 1]!.durationMs);
      }
    }
  });

  it("names which follower a follower fault hits, among the nodes' followers, without changing the rest", () => {
    const three = buildSchedule({ seed: 5, ...all });
    const five = buildSchedule({ seed: 5, ...all, nodes: 5 });
    expect(five.map(({ follower: _, ...f }) => f)).toEqual(three.map(({ follower: _, ...f }) => f));
    for (const f of five.filter((x) => x.role === "follower")) expect(f.follower).toBeLessThan(4);
    expect(three.filter((x) => x.role === "follower").every((f) => f.follower! < 2)).toBe(true);
  });

  it("promotes the standby at most once a run", () => {
    for (let seed = 0; seed < 200; seed++) {
      const promotions = buildSchedule({ seed, durationMs: 600_000, faults: FAULT_KINDS, nodes: 3 }).filter((f) => f.kind === "db-promote");
      expect(promotions.length).toBeLessThanOrEqual(1);
    }
  });

  it("uses only the kinds asked for, and covers every kind over 50 seeds of 60 s", () => {
    const only = buildSchedule({ seed: 7, durationMs: 60_000, faults: ["slow-leader", "cut-agent-db"], nodes: 3 });
    expect(new Set(only.map((f) => f.kind))).toEqual(new Set(["slow-leader", "cut-agent-db"]));
    const seen = new Set<string>();
    for (let seed = 1; seed <= 50; seed++) for (const f of buildSchedule({ seed, ...all })) seen.add(f.kind);
    expect([...seen].sort()).toEqual([...FAULT_KINDS].sort());
  });

  it("draws from a PRNG that repeats for a seed and spreads over [0, 1)", () => {
    const a = seededRng(9);
    const b = seededRng(9);
    const xs = Array.from({ length: 1000 }, () => a.next());
    expect(Array.from({ length: 1000 }, () => b.next())).toEqual(xs);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
    expect(xs.filter((x) => x < 0.5).length).toBeGreaterThan(400);
  });
});

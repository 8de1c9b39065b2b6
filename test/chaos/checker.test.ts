import { describe, expect, it } from "vitest";
import { checkHistory, type InvariantId } from "../../chaos/checker.js";
import type { ChaosHistory, DatabaseSnapshot } from "../../chaos/history.js";
import { calmHistory, epochRow, T0 } from "./history-builder.js";

function invariantsOf(h: ChaosHistory): InvariantId[] {
  return checkHistory(h).violations.map((v) => v.invariant);
}

function withDatabase(h: ChaosHistory, server: string, change: (db: DatabaseSnapshot) => DatabaseSnapshot): ChaosHistory {
  return { ...h, databases: h.databases.map((d) => (d.server === server ? change(d) : d)) };
}

describe("the chaos checker", () => {
  it("finds nothing wrong in a calm history", () => {
    const result = checkHistory(calmHistory());
    expect(result.violations).toEqual([]);
    expect(result.convergedAfterMs).toBe(1_000);
  });

  describe("I1 epochs", () => {
    it("catches an epoch skipped on the authoritative database", () => {
      const h = withDatabase(calmHistory(), "primary", (d) => ({ ...d, epochs: [d.epochs[0]!, { ...d.epochs[1]!, epoch: 3 }] }));
      expect(invariantsOf(h)).toContain("I1");
    });

    it("allows the jump of the first term on a promoted server", () => {
      const h = calmHistory();
      const promoted = withDatabase(h, "primary", (d) => ({ ...d, epochs: [d.epochs[0]!, epochRow(5, "cp-node-2", 12_000, null)] }));
      const standby = withDatabase(promoted, "standby1", (d) => ({ ...d, epochs: [d.epochs[0]!] }));
      const result = checkHistory({ ...standby, promotions: [{ at: T0 + 11_000, from: "standby1", to: "primary", standbyWasSync: true }] });
      expect(result.violations.filter((v) => v.invariant === "I1")).toEqual([]);
    });

    it("catches one epoch held on two databases by different nodes", () => {
      const h = withDatabase(calmHistory(), "standby1", (d) => ({ ...d, epochs: [d.epochs[0]!, epochRow(2, "cp-node-3", 12_500, null)] }));
      const v = checkHistory(h).violations.find((x) => x.invariant === "I1");
      expect(v?.message).toMatch(/epoch 2 is held on primary by cp-node-2 and on standby1 by cp-node-3/);
    });

    it("catches a term opened on a zombie after the promotion", () => {
      const h = withDatabase(calmHistory(), "standby1", (d) => ({ ...d, authoritative: false, epochs: [...d.epochs, epochRow(3, "cp-node-1", 20_000, null)] }));
      const v = checkHistory({ ...h, promotions: [{ at: T0 + 18_000, from: "standby1", to: "primary", standbyWasSync: true }] }).violations;
      expect(v.some((x) => x.invariant === "I1" && /after it was superseded/.test(x.message))).toBe(true);
    });
  });

  it("I2 catches a write of epoch 1 committed after a write of epoch 2", () => {
    const late = { id: "late", nodeId: "cp-node-1", epoch: 1, commitUs: (T0 + 16_000) * 1000 };
    const h = withDatabase(calmHistory(), "standby1", (d) => ({ ...d, writes: [...d.writes, late] }));
    const v = checkHistory(h).violations.filter((x) => x.invariant === "I2");
    expect(v).toHaveLength(1);
    expect(v[0]!.message).toMatch(/on standby1, write late fenced with epoch 1 committed 1000000µs after write w2 of epoch 2/);
  });

  describe("I3 acknowledged writes", () => {
    const missing = (h: ChaosHistory) => withDatabase(h, "primary", (d) => ({ ...d, writes: d.writes.filter((w) => w.id !== "w1") }));

    it("catches an acknowledged write missing from the authoritative database", () => {
      expect(invariantsOf(missing(calmHistory()))).toEqual(["I3"]);
    });

    it("counts it as RPO, not a violation, when an async standby was promoted after it", () => {
      const h = { ...missing(calmHistory()), promotions: [{ at: T0 + 6_000, from: "standby1", to: "primary", standbyWasSync: false }] };
      const result = checkHistory(h);
      expect(result.violations.filter((v) => v.invariant === "I3")).toEqual([]);
      expect(result.lostToRpo).toBe(1);
    });

    it("does not excuse it when the promoted standby was synchronous", () => {
      const h = { ...missing(calmHistory()), promotions: [{ at: T0 + 6_000, from: "standby1", to: "primary", standbyWasSync: true }] };
      expect(invariantsOf(h)).toContain("I3");
    });
  });

  it("I4 catches two nodes answering Write-Ready at the same instant", () => {
    const h = calmHistory();
    const samples = h.samples.map((s) => (s.tick === 50 && s.nodeId === "cp-node-3" ? { ...s, ready: true, epoch: 7 } : s));
    const v = checkHistory({ ...h, samples }).violations;
    expect(v.map((x) => x.invariant)).toEqual(["I4"]);
    expect(v[0]!.message).toMatch(/cp-node-1 \(epoch 1\) and cp-node-3 \(epoch 7\) both answered Write-Ready/);
  });

  describe("I5 convergence", () => {
    it("catches a cluster that takes longer than the bound", () => {
      expect(invariantsOf({ ...calmHistory(), convergenceBoundMs: 500 })).toEqual(["I5"]);
    });

    it("catches a cluster with no leader after the faults", () => {
      const h = calmHistory();
      expect(invariantsOf({ ...h, samples: h.samples.map((s) => ({ ...s, ready: false })) })).toContain("I5");
    });

    it("catches a leader that does not stay", () => {
      const h = calmHistory();
      const samples = h.samples.map((s) => (s.tick === 250 && s.nodeId === "cp-node-2" ? { ...s, ready: false } : s));
      expect(invariantsOf({ ...h, samples })).toEqual(["I5"]);
    });
  });

  describe("I6 audit", () => {
    it("catches a term with no audit event", () => {
      const h = calmHistory();
      expect(invariantsOf({ ...h, audit: h.audit.slice(0, 1) })).toEqual(["I6"]);
    });

    it("does not excuse a term that lived only while no coordinator could look: the next active one records it late", () => {
      const h = calmHistory();
      expect(invariantsOf({ ...h, audit: h.audit.slice(0, 1), blindWindows: [{ from: T0 + 11_000, to: T0 + 31_000, why: "coordinator killed" }] })).toEqual(["I6"]);
    });

    it("catches an audit event claiming a change that did not happen", () => {
      const h = calmHistory();
      const bogus = { time: new Date(T0 + 20_000).toISOString(), type: "ha.leader.changed", node_id: "cp-node-3", epoch: 3, message: "cp-node-3 holds epoch 3", evidence: {} };
      expect(invariantsOf({ ...h, audit: [...h.audit, bogus] })).toEqual(["I6"]);
    });
  });

  describe("H1 hostile clients", () => {
    it("catches a rogue stream that was accepted", () => {
      const h = { ...calmHistory(), hostile: [{ kind: "rogue-stream" as const, at: T0, refused: false, detail: "accepted" }] };
      expect(invariantsOf(h)).toEqual(["H1"]);
    });

    it("catches a forged epoch that reached the audit, and an impostor made leader", () => {
      const h = calmHistory();
      const audit = [...h.audit, { time: new Date(T0 + 20_000).toISOString(), type: "ha.failover.completed", node_id: "cp-node-forger", epoch: 1_000_002, message: "", evidence: {} }];
      const hostile = [{ kind: "forged-report" as const, at: T0, refused: true, detail: "", claimedEpoch: 1_000_002, impostor: "cp-node-forger" }];
      const v = checkHistory({ ...h, audit, hostile }).violations.filter((x) => x.invariant === "H1");
      expect(v.map((x) => x.message)).toEqual([
        "cp-node-forger, which only ever sent forged reports, was made leader",
        "the epoch 1000002 claimed by a forged-report was believed",
      ]);
    });
  });
});

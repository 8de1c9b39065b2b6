import { describe, expect, it } from "vitest";
import { makePolicy } from "../../coordinator/config.js";
import { detectSplitBrain, type SplitBrainFinding } from "../../coordinator/detect/split-brain.js";
import { clusterView, dbTruth, followerReport, healthyCluster, leaderReport, localDb, node, onLockDatabase, report } from "../../coordinator/view/builders.js";

const NOW = 500_000;
const timing = makePolicy({ holderMismatchGraceMs: 500 });
const on = (f: SplitBrainFinding) => f.criteria.filter((c) => c.detected).map((c) => c.name);
const detail = (f: SplitBrainFinding, name: string) => f.criteria.find((c) => c.name === name)!.detail;
const OTHER_DB = onLockDatabase("7301000000000000001", 2);

describe("split-brain detection compares claims across nodes", () => {
  it("a healthy cluster has no finding, and every criterion is listed with why not", () => {
    const f = detectSplitBrain(healthyCluster(NOW), timing, NOW);
    expect(f.detected).toBe(false);
    expect(f.criteria.map((c) => c.name)).toEqual([
      "epoch_divergence", "holder_mismatch", "unclosed_epochs", "multiple_lock_holders", "multiple_write_ready", "multiple_writable_primaries",
    ]);
    expect(detail(f, "unclosed_epochs")).toBe("1 epoch has resigned_at = NULL (7 by cp-node-1)");
    expect(f.explanation).toBe("no split-brain: 3 connected nodes, at most one claims write authority");
  });

  it("two leaders on different primaries: every claim criterion fires at once, naming nodes and epochs", () => {
    const v = healthyCluster(NOW);
    const split = { ...v, nodes: [...v.nodes.slice(0, 2), node(leaderReport("cp-node-3", 8, OTHER_DB), NOW, { claimSinceMs: NOW })] };
    const f = detectSplitBrain(split, timing, NOW);
    expect(on(f)).toEqual(["epoch_divergence", "multiple_lock_holders", "multiple_write_ready", "multiple_writable_primaries"]);
    expect(detail(f, "epoch_divergence")).toBe("cp-node-1 reports epoch 7; cp-node-3 reports epoch 8");
    expect(detail(f, "multiple_lock_holders")).toBe("cp-node-1 (epoch 7) and cp-node-3 (epoch 8) all report holding the lock");
    expect(f.claimants).toEqual(["cp-node-1", "cp-node-3"]);
    expect(f.explanation).toMatch(/follow different primaries/);
    // cp-node-3's claim is on a database the coordinator does not read: it says what to verify, never "promote".
    expect(f.explanation).toMatch(/cp-node-3 reports the highest epoch \(8\), but its claim is unverified: cp-node-3 claims the lock on database 7301000000000000001\/tl2, which is not the coordinator's lock database \(7301000000000000001\/tl1\)\. Verify on that database/);
    expect(f.explanation).not.toMatch(/promote-leader/);
  });

  it("the highest-epoch claimant confirmed by the coordinator's database is advised for promote-leader", () => {
    const v = healthyCluster(NOW);
    const split = {
      ...v,
      nodes: [node(leaderReport("cp-node-1", 7, OTHER_DB), NOW, { claimSinceMs: NOW }), v.nodes[1]!, node(leaderReport("cp-node-3", 8), NOW)],
      db: dbTruth("cp-node-3", 8, NOW),
    };
    const f = detectSplitBrain(split, timing, NOW);
    expect(f.explanation).toMatch(/cp-node-3 has the highest epoch \(8\) and the coordinator's database confirms its lock; recover with promote-leader/);
  });

  it("the seed's example: both nodes report epoch 8 on the same database, each after the other's claim began", () => {
    const v = clusterView(
      [node(leaderReport("node-1", 8), NOW, { claimSinceMs: NOW - 5000 }), node(leaderReport("node-2", 8), NOW, { claimSinceMs: NOW - 4000 })],
      dbTruth("node-2", 8, NOW),
    );
    const f = detectSplitBrain(v, timing, NOW);
    expect(f.epochDivergence).toBe(true);
    expect(detail(f, "epoch_divergence")).toBe("node-1 reports epoch 8; node-2 reports epoch 8");
    expect(f.explanation).toMatch(/Both hold epoch 8: the situation is ambiguous; use manual-reconcile/);
  });

  it("the old leader's last report racing the successor's first one is not a split-brain", () => {
    // cp-node-1 last reported before cp-node-2's claim began: it was stale, not concurrent.
    const v = clusterView(
      [
        node(leaderReport("cp-node-1", 7), NOW, { lastReportMs: NOW - 20, claimSinceMs: NOW - 60_000 }),
        node(leaderReport("cp-node-2", 8), NOW, { lastReportMs: NOW, claimSinceMs: NOW - 5 }),
      ],
      dbTruth("cp-node-2", 8, NOW, { epochChangedAtMs: NOW - 30 }),
    );
    expect(detectSplitBrain(v, timing, NOW).detected).toBe(false);
    // Once the old leader reports again still claiming, it is a split.
    const later = { ...v, nodes: v.nodes.map((n) => (n.nodeId === "cp-node-1" ? { ...n, lastReportMs: NOW + 1 } : n)) };
    expect(on(detectSplitBrain(later, timing, NOW + 1))).toContain("multiple_lock_holders");
  });

  it("a claim from a node whose stream closed is not counted", () => {
    const v = healthyCluster(NOW);
    const crashed = { ...v, nodes: [{ ...v.nodes[0]!, connected: false }, node(leaderReport("cp-node-2", 8), NOW), v.nodes[2]!] };
    expect(detectSplitBrain({ ...crashed, db: dbTruth("cp-node-2", 8, NOW) }, timing, NOW).detected).toBe(false);
  });

  it("holder mismatch: pg_locks says one holder, leadership_state another, past the grace of a fresh grant", () => {
    const db = dbTruth("cp-node-2", 7, NOW, { leadership: { holderId: "cp-node-1", epoch: 7, acquiredAt: undefined, heartbeatAt: undefined } });
    const v = clusterView([node(followerReport("cp-node-1", "cp-node-1", 7), NOW), node(followerReport("cp-node-2", "cp-node-1", 7), NOW)], db);
    const f = detectSplitBrain(v, timing, NOW);
    expect(on(f)).toEqual(["holder_mismatch"]);
    expect(f.holderMismatch).toBe(true);
    expect(detail(f, "holder_mismatch")).toBe("lock held by cp-node-2; leadership_state.holder_id = cp-node-1");
    const fresh = { ...v, db: { ...db, lockHoldersSinceMs: NOW - 100 } };
    expect(detectSplitBrain(fresh, timing, NOW).holderMismatch).toBe(false);
  });

  it("more than one unclosed epoch", () => {
    const base = dbTruth("cp-node-2", 9, NOW);
    const db = { ...base, unclosedEpochs: [...base.unclosedEpochs, { epoch: 8, holderId: "cp-node-1", acquiredAt: new Date(), resignedAt: undefined, endReason: undefined }] };
    const f = detectSplitBrain(clusterView([node(leaderReport("cp-node-2", 9), NOW)], db), timing, NOW);
    expect(on(f)).toEqual(["unclosed_epochs"]);
    expect(f.unclosedEpochs).toBe(2);
    expect(detail(f, "unclosed_epochs")).toBe("2 epochs have resigned_at = NULL (8 by cp-node-1, 9 by cp-node-2)");
    expect(f.explanation).toMatch(/2 terms were never closed/);
  });

  it("a claimant whose epoch the database has moved past, reported after the database changed", () => {
    const v = clusterView([node(leaderReport("cp-node-1", 7), NOW, { claimSinceMs: NOW - 10_000 })], dbTruth("cp-node-1", 9, NOW, { epochChangedAtMs: NOW - 1000 }));
    const f = detectSplitBrain(v, timing, NOW);
    expect(f.epochDivergence).toBe(true);
    expect(detail(f, "epoch_divergence")).toBe("cp-node-1 reports epoch 7; leadership_state.epoch = 9");
    // A report sent before the database read that showed the change is just late.
    const late = { ...v, nodes: [{ ...v.nodes[0]!, lastReportMs: NOW - 2000 }] };
    expect(detectSplitBrain(late, timing, NOW).epochDivergence).toBe(false);
  });

  it("two writable local primaries among active nodes", () => {
    const v = healthyCluster(NOW);
    const two = {
      ...v,
      nodes: v.nodes.map((n, i) =>
        i < 2 ? { ...n, report: { ...n.report, localDatabase: localDb({ inRecovery: false, timeline: i + 1 }) } } : n,
      ),
    };
    const f = detectSplitBrain(two, timing, NOW);
    expect(on(f)).toEqual(["multiple_writable_primaries"]);
    expect(detail(f, "multiple_writable_primaries")).toBe(
      "writable primaries: 7301000000000000001/timeline 1 (cp-node-1); 7301000000000000001/timeline 2 (cp-node-2)",
    );
  });

  it("resolved: the stale node resigned and holds, yet still reads its old database's leadership_state; no finding", () => {
    const stale = report("cp-node-1", {
      role: "held",
      ...onLockDatabase("7301000000000000001", 1),
      lockDatabaseWritable: true,
      observedLeader: { holderId: "cp-node-1", epoch: 7, acquiredAt: undefined, writeReady: true, heartbeatAt: undefined },
      highestEpochSeen: 8,
    });
    const v = clusterView([node(stale, NOW), node(leaderReport("cp-node-2", 8, OTHER_DB), NOW)], dbTruth(undefined, 7, NOW));
    const f = detectSplitBrain(v, timing, NOW);
    expect(f.detected).toBe(false);
  });
});

import { describe, expect, it } from "vitest";
import { makePolicy } from "../../coordinator/config.js";
import { detectSplitBrain } from "../../coordinator/detect/split-brain.js";
import { clusterView, dbTruth, followerReport, leaderReport, node } from "../../coordinator/view/builders.js";
import { holderOwner, leaderOf } from "../../coordinator/view/cluster-view.js";

const NOW = 1_000_000;
const policy = makePolicy({ reportStaleAfterMs: 2_000 });

/**
 * Found by `npm run chaos` (seed 1): a node with a valid agent credential
 * reported the real leader's lock session pid and the database's epoch + 1,
 * just as the real leader's reports went stale; the coordinator took it for
 * the leader and audited a leader change to it that no database holds.
 * A report is a claim: a lock session belongs to the node its
 * application_name names, and a term the database does not hold yet counts
 * only as the very next epoch.
 */
describe("a forged claim on another node's lock session", () => {
  // cp-node-2 holds the lock (pid 1007, named cp-node-2) for epoch 7; its reports went stale 3 s ago.
  const db = dbTruth("cp-node-2", 7, NOW);
  const real = node(leaderReport("cp-node-2", 7, { lockBackendPid: 1007 }), NOW - 3_000);
  const follower = node(followerReport("cp-node-1", "cp-node-2", 7), NOW);
  const forger = (epoch: number) => node(leaderReport("cp-node-forger", epoch, { lockBackendPid: 1007 }), NOW);

  it("does not make the forger the session's owner, the leader, or a lock holder in the split-brain evidence", () => {
    for (const epoch of [8, 1_000_007]) {
      const view = clusterView([real, follower, forger(epoch)], db);
      expect(holderOwner(view, db.lockHolders[0]!, policy, NOW)).toEqual({ kind: "node", nodeId: "cp-node-2" });
      const leader = leaderOf(view, policy, NOW);
      expect(leader.holderId).toBe("cp-node-2");
      expect(leader.epoch).toBe(7);
      const finding = detectSplitBrain(view, policy, NOW);
      for (const c of finding.criteria) expect(c.detail).not.toMatch(/lock (is )?held by cp-node-forger/);
    }
  });

  it("a renamed session is owned only by the node the database names, not by whoever reports its pid", () => {
    const renamed = { ...db, lockHolders: [{ ...db.lockHolders[0]!, applicationName: "psql" }] };
    expect(holderOwner(clusterView([real, follower, forger(8)], renamed), renamed.lockHolders[0]!, policy, NOW)).toEqual({ kind: "node", nodeId: "cp-node-2" });
    const unnamed = { ...renamed, leadership: { ...renamed.leadership, holderId: undefined } };
    expect(holderOwner(clusterView([follower, forger(8)], unnamed), unnamed.lockHolders[0]!, policy, NOW)).toEqual({ kind: "unknown", nodeId: "psql" });
  });

  it("a holder not yet named in leadership_state counts with the next epoch only, never a claimed jump", () => {
    // cp-node-1's own session holds the lock; leadership_state still shows epoch 7 with nobody named.
    const granted = dbTruth(undefined, 7, NOW, { lockHolders: [{ pid: 2001, applicationName: "cp-node-1", backendStart: undefined, clientAddr: "127.0.0.1" }] });
    const claiming = (epoch: number) => clusterView([node(leaderReport("cp-node-1", epoch, { lockBackendPid: 2001 }), NOW)], granted);
    expect(leaderOf(claiming(8), policy, NOW)).toMatchObject({ holderId: "cp-node-1", epoch: 8 });
    expect(leaderOf(claiming(9), policy, NOW).epoch).not.toBe(9);
  });
});

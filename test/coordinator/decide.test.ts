import { describe, expect, it } from "vitest";
import { makePolicy } from "../../coordinator/config.js";
import { decide, type Decision } from "../../coordinator/decide/decide.js";
import {
  clusterView, dbTruth, followerReport, healthyCluster, leaderReport, localDb, node, onLockDatabase, replication, report,
} from "../../coordinator/view/builders.js";
import type { ClusterView } from "../../coordinator/view/cluster-view.js";

const NOW = 1_000_000;
const policy = makePolicy({ designateSuccessor: false, failureTimeoutMs: 30_000, failoverCooldownMs: 60_000, lagGateMaxWaitMs: 20_000 });
const kinds = (ds: Decision[]) => ds.map((d) => d.kind);

/** cp-node-1's lock is gone (crashed): its stream closed, nobody holds the lock. */
function leaderCrashed(view: ClusterView = healthyCluster(NOW)): ClusterView {
  return {
    ...view,
    nodes: view.nodes.map((n) => (n.nodeId === "cp-node-1" ? { ...n, connected: false, lastReportMs: NOW - 500 } : n)),
    db: dbTruth(undefined, 7, NOW, { leadership: { holderId: "cp-node-1", epoch: 7, acquiredAt: undefined, heartbeatAt: undefined } }),
    leaderlessSinceMs: NOW - 100,
  };
}

/** cp-node-1 still holds its lock session but its stream and database heartbeat are silent. */
function leaderSilent(streamSilentMs: number, heartbeatFrozenMs: number): ClusterView {
  const v = healthyCluster(NOW);
  return {
    ...v,
    nodes: v.nodes.map((n) => (n.nodeId === "cp-node-1" ? { ...n, connected: false, lastReportMs: NOW - streamSilentMs } : n)),
    db: { ...v.db!, heartbeatAdvancedAtMs: NOW - heartbeatFrozenMs },
  };
}

describe("decide: one HA cycle as decisions with a kind and a reason", () => {
  it("a healthy leader needs nothing", () => {
    const ds = decide(healthyCluster(NOW), policy, NOW);
    expect(ds).toEqual([{ kind: "leader_healthy", reason: "leader cp-node-1 healthy (epoch 7): its reports arrive and its session holds the lock" }]);
  });

  it("no leader: the lock is free, so the best candidate (lowest lag) is ordered to campaign above the highest epoch seen", () => {
    const ds = decide(leaderCrashed(), policy, NOW);
    expect(ds).toHaveLength(1);
    expect(ds[0]).toMatchObject({ kind: "campaign", nodeId: "cp-node-2", epochFloor: 7, cause: "lock_free" });
    expect(ds[0]!.reason).toMatch(/^the lock is free: order cp-node-2 to campaign above epoch 7; best candidate cp-node-2 \(priority 0, replay lag 0.02s, async\); ahead of cp-node-3/);
  });

  it("the epoch floor comes from what the database confirmed and the stored floor, never from a report", () => {
    const v = leaderCrashed();
    // A report is a claim: a node saying it saw epoch 12 does not raise the floor.
    const withHigh = { ...v, nodes: v.nodes.map((n) => (n.nodeId === "cp-node-3" ? { ...n, report: { ...n.report, highestEpochSeen: 12 } } : n)) };
    expect(decide(withHigh, policy, NOW)[0]).toMatchObject({ kind: "campaign", epochFloor: 7 });
    expect(decide({ ...v, epochFloor: 15 }, policy, NOW)[0]).toMatchObject({ kind: "campaign", epochFloor: 15 });
  });

  it("a slow leader whose lock session is alive and whose heartbeat advances is not failed over (seed 001 pitfall 4)", () => {
    const ds = decide(leaderSilent(120_000, 400), policy, NOW);
    expect(kinds(ds)).toEqual(["leader_slow"]);
    expect(ds[0]!.reason).toBe(
      "leader cp-node-1 (epoch 7): no report from it for 120000ms (its stream is closed), but its session still holds the lock " +
        "and its heartbeat in the lock database last advanced 400ms ago, within the failure timeout 30000ms: it is alive, no failover",
    );
  });

  it("a leader with a frozen heartbeat whose stream died recently is only suspected", () => {
    const ds = decide(leaderSilent(5_000, 40_000), policy, NOW);
    expect(kinds(ds)).toEqual(["leader_suspect"]);
    expect(ds[0]!.reason).toBe(
      "leader cp-node-1 (epoch 7): its heartbeat in the lock database last advanced 40000ms ago, past the failure timeout 30000ms, " +
        "but no report from it for 5000ms (its stream is closed), within it: waiting, no failover until both are past it",
    );
  });

  it("a hung leader (heartbeat frozen and stream dead past the failure timeout) has its session terminated and the best candidate campaigns", () => {
    const ds = decide(leaderSilent(31_000, 31_000), policy, NOW);
    expect(ds.map((d) => ("nodeId" in d ? `${d.kind}:${d.nodeId}` : d.kind))).toEqual(["terminate_leader:cp-node-1", "campaign:cp-node-2"]);
    expect(ds[0]).toMatchObject({ pid: 1007, epoch: 7 });
    expect(ds[0]!.reason).toBe(
      "leader cp-node-1 (epoch 7) is hung: its heartbeat in the lock database last advanced 31000ms ago and no report from it for 31000ms " +
        "(its stream is closed), both past the failure timeout 30000ms: terminate its lock session (pid 1007) so the lock is free",
    );
    expect(ds[1]).toMatchObject({ cause: "leader_hung" });
    expect(ds[1]!.reason).toMatch(/^leader cp-node-1 \(epoch 7\) is hung: .*: order cp-node-2 to campaign above epoch 7; /);
  });

  it("inside the cooldown after an automatic failover, a suspected death waits; a free lock is still taken", () => {
    const hung = { ...leaderSilent(31_000, 31_000), lastAutomaticFailoverMs: NOW - 10_000 };
    const ds = decide(hung, policy, NOW);
    expect(kinds(ds)).toEqual(["cooldown"]);
    expect(ds[0]!.reason).toMatch(/; but the last automatic failover was 10000ms ago: no failover for another 50000ms \(cooldown 60000ms\)$/);
    expect(kinds(decide({ ...leaderCrashed(), lastAutomaticFailoverMs: NOW - 10_000 }, policy, NOW))).toEqual(["campaign"]);
  });

  it("two nodes claiming write authority on different primaries: no automatic action while the split-brain stands", () => {
    const v = healthyCluster(NOW);
    const split = { ...v, nodes: [...v.nodes.slice(0, 2), node(leaderReport("cp-node-3", 8, onLockDatabase("7301000000000000001", 2)), NOW)] };
    const ds = decide(split, policy, NOW);
    expect(kinds(ds)).toEqual(["split_brain_hold"]);
    expect(ds[0]!.reason).toMatch(/^split-brain detected \(epoch_divergence, multiple_lock_holders, multiple_write_ready, multiple_writable_primaries\)/);
  });

  it("with automatic recovery on, a split-brain promotes the healthy claimant with the highest epoch, once the database confirms its lock", () => {
    const v = healthyCluster(NOW);
    // cp-node-3's lock is in the coordinator's database (pid 1008); cp-node-1 holds epoch 7 on an old primary.
    const split = {
      ...v,
      nodes: [node(leaderReport("cp-node-1", 7, onLockDatabase("7301000000000000001", 2)), NOW), v.nodes[1]!, node(leaderReport("cp-node-3", 8), NOW)],
      db: dbTruth("cp-node-3", 8, NOW),
    };
    expect(decide(split, { ...policy, autoRecoverSplitBrain: true }, NOW)).toEqual([
      expect.objectContaining({ kind: "recover_split_brain", nodeId: "cp-node-3" }),
    ]);
    // The same epochs, but cp-node-3 claims a database the coordinator does not read: never crowned.
    const unverified = { ...v, nodes: [...v.nodes.slice(0, 2), node(leaderReport("cp-node-3", 8, onLockDatabase("7301000000000000001", 2)), NOW)] };
    const [d] = decide(unverified, { ...policy, autoRecoverSplitBrain: true }, NOW);
    expect(d).toMatchObject({ kind: "split_brain_hold" });
    expect(d!.reason).toMatch(/automatic recovery impossible: the highest claim is not confirmed by the coordinator.s database: cp-node-3 claims the lock on database 7301000000000000001\/tl2/);
  });

  it("a cluster whose only other nodes are nofailover has no candidate, and says why", () => {
    const v = leaderCrashed(
      clusterView(
        [
          node(leaderReport("cp-node-1", 7), NOW),
          node(followerReport("cp-node-2", "cp-node-1", 7, { nofailover: true }), NOW),
          node(followerReport("cp-node-3", "cp-node-1", 7, { nofailover: true }), NOW),
        ],
        undefined,
      ),
    );
    expect(decide(v, policy, NOW)).toEqual([
      { kind: "no_candidate", reason: "the lock is free, but no eligible successor: cp-node-1 is disconnected; cp-node-2 has nofailover set; cp-node-3 has nofailover set" },
    ]);
  });

  it("candidates with critical lag wait behind the lag gate, but not forever when the measurement is frozen (patroni#3703)", () => {
    const critical = localDb({ replayLagSeconds: 42, lagStatus: "critical" });
    const base = leaderCrashed(
      clusterView(
        [
          node(leaderReport("cp-node-1", 7), NOW),
          node(followerReport("cp-node-2", "cp-node-1", 7, { localDatabase: critical }), NOW),
          node(followerReport("cp-node-3", "cp-node-1", 7, { nofailover: true }), NOW),
        ],
        undefined,
      ),
    );
    const early = decide({ ...base, leaderlessSinceMs: NOW - 1_000 }, policy, NOW);
    expect(kinds(early)).toEqual(["lag_gate_wait"]);
    expect(early[0]!.reason).toMatch(/every candidate's replay lag is critical; accepting the least-bad one in 19000ms/);
    const late = decide({ ...base, leaderlessSinceMs: NOW - 20_000 }, policy, NOW);
    expect(late[0]).toMatchObject({ kind: "campaign", nodeId: "cp-node-2" });
    expect(late[0]!.reason).toMatch(/although its lag is critical \(no other candidate\)/);
  });

  it("a node with critical lag is passed over while another is eligible", () => {
    const v = leaderCrashed();
    const lagging = { ...v, nodes: v.nodes.map((n) => (n.nodeId === "cp-node-2" ? { ...n, report: { ...n.report, localDatabase: localDb({ replayLagSeconds: 11 }) } } : n)) };
    expect(decide(lagging, policy, NOW)[0]).toMatchObject({ kind: "campaign", nodeId: "cp-node-3" });
  });

  it("a node whose own database cannot be reached is passed over: its lag is unknown, not zero", () => {
    const v = leaderCrashed();
    const blind = { ...v, nodes: v.nodes.map((n) => (n.nodeId === "cp-node-2" ? { ...n, report: { ...n.report, localDatabase: localDb({ reachable: false, error: "connection refused" }) } } : n)) };
    const [d] = decide(blind, policy, NOW);
    expect(d).toMatchObject({ kind: "campaign", nodeId: "cp-node-3" });
    expect(d!.reason).not.toMatch(/although/);
  });

  it("maintenance mode: no automatic action, the reason still says what it would face", () => {
    expect(decide({ ...leaderCrashed(), maintenance: true }, policy, NOW)).toEqual([
      { kind: "maintenance", reason: "maintenance mode: no automatic action (no leader)" },
    ]);
  });

  it("automatic failover off: nothing is ordered", () => {
    expect(kinds(decide(leaderCrashed(), { ...policy, autoFailover: false }, NOW))).toEqual(["auto_failover_disabled"]);
  });

  it("after manual-reconcile nobody is ordered to campaign", () => {
    expect(kinds(decide({ ...leaderCrashed(), reconcileHold: true }, policy, NOW))).toEqual(["reconcile_hold"]);
  });

  it("held nodes are never chosen automatically", () => {
    const v = leaderCrashed();
    const held = { ...v, nodes: v.nodes.map((n) => (n.nodeId === "cp-node-2" ? { ...n, report: { ...n.report, role: "held" as const, held: true } } : n)) };
    expect(decide(held, policy, NOW)[0]).toMatchObject({ kind: "campaign", nodeId: "cp-node-3" });
  });

  it("an ordered campaign in flight is not ordered again", () => {
    expect(kinds(decide({ ...leaderCrashed(), pendingCampaign: { nodeId: "cp-node-2", sentAtMs: NOW - 100 } }, policy, NOW))).toEqual(["campaign_in_flight"]);
  });

  it("an admin operation in progress suspends automatic decisions", () => {
    expect(kinds(decide({ ...leaderCrashed(), operationInProgress: "planned failover" }, policy, NOW))).toEqual(["operation_in_progress"]);
  });

  it("an unreadable database leaves elections to the agents", () => {
    const v = healthyCluster(NOW);
    const ds = decide({ ...v, db: { ...v.db!, reachable: false, error: "connect ECONNREFUSED" } }, policy, NOW);
    expect(ds).toEqual([{ kind: "database_unreachable", reason: "lock database unreachable (connect ECONNREFUSED); leaving elections to the agents" }]);
  });

  it("no lock holder in the coordinator's database but a node holds the lock elsewhere: nothing is ordered", () => {
    const v = healthyCluster(NOW);
    // Every agent moved to the promoted server; the coordinator still reads the old one.
    const moved = { ...v, nodes: v.nodes.map((n) => ({ ...n, report: { ...n.report, ...onLockDatabase("7301000000000000001", 2) } })), db: dbTruth(undefined, 7, NOW) };
    expect(kinds(decide(moved, policy, NOW))).toEqual(["leader_elsewhere"]);
  });
});

describe("decide: successor order (Patroni's rules)", () => {
  const cases: { name: string; nodes: ReturnType<typeof report>[]; want: string }[] = [
    {
      name: "highest priority first, even with more lag",
      nodes: [
        followerReport("a", "x", 7, { priority: 1, localDatabase: localDb({ replayLagSeconds: 0.1 }) }),
        followerReport("b", "x", 7, { priority: 5, localDatabase: localDb({ replayLagSeconds: 3 }) }),
      ],
      want: "b",
    },
    {
      name: "then the lowest replay lag",
      nodes: [
        followerReport("a", "x", 7, { localDatabase: localDb({ replayLagSeconds: 0.9 }) }),
        followerReport("b", "x", 7, { localDatabase: localDb({ replayLagSeconds: 0.2 }) }),
      ],
      want: "b",
    },
    {
      name: "then a synchronous standby before an asynchronous one",
      nodes: [followerReport("a", "x", 7), followerReport("b", "x", 7)],
      want: "b",
    },
    {
      name: "never a nofailover node, whatever its priority",
      nodes: [followerReport("a", "x", 7, { priority: 100, nofailover: true }), followerReport("b", "x", 7)],
      want: "b",
    },
    {
      name: "never a node that cannot reach the lock database",
      nodes: [followerReport("a", "x", 7, { priority: 9, databaseError: "connection refused" }), followerReport("b", "x", 7)],
      want: "b",
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const leader = node(
        leaderReport("x", 7, {
          replication: replication({ replicas: [{ applicationName: "b", clientAddr: "", state: "streaming", syncState: "sync", writeLagSeconds: 0, replayLagSeconds: 0, replayLagBytes: 0 }] }),
        }),
        NOW,
        { connected: false },
      );
      // The crashed leader's row still names it: its term was never closed.
      const db = dbTruth(undefined, 7, NOW, { leadership: { holderId: "x", epoch: 7, acquiredAt: undefined, heartbeatAt: undefined } });
      const v: ClusterView = { ...clusterView([leader, ...c.nodes.map((r) => node(r, NOW))], db), leaderlessSinceMs: NOW };
      expect(decide(v, policy, NOW)[0]).toMatchObject({ kind: "campaign", nodeId: c.want });
    });
  }
});

describe("decide: designated successor", () => {
  const designating = { ...policy, designateSuccessor: true, designationWaitMs: 60_000 };

  it("the best candidate is queued on the lock with a standing campaign", () => {
    const ds = decide(healthyCluster(NOW), designating, NOW);
    expect(kinds(ds)).toEqual(["leader_healthy", "designate_successor"]);
    expect(ds[1]).toMatchObject({ nodeId: "cp-node-2", waitMs: 60_000, epochFloor: 7 });
  });

  it("a designee still waiting is left alone", () => {
    const v = { ...healthyCluster(NOW), designation: { nodeId: "cp-node-2", sentAtMs: NOW - 1000, waitMs: 60_000, active: true, endedAtMs: undefined } };
    expect(kinds(decide(v, designating, NOW))).toEqual(["leader_healthy"]);
  });

  it("a designee that became ineligible is released and the next best designated", () => {
    const v = healthyCluster(NOW);
    const moved = {
      ...v,
      nodes: v.nodes.map((n) => (n.nodeId === "cp-node-2" ? { ...n, report: { ...n.report, nofailover: true } } : n)),
      designation: { nodeId: "cp-node-2", sentAtMs: NOW - 1000, waitMs: 60_000, active: true, endedAtMs: undefined },
    };
    const ds = decide(moved, designating, NOW);
    expect(ds.map((d) => ("nodeId" in d ? `${d.kind}:${d.nodeId}` : d.kind))).toEqual(["leader_healthy", "release_designee:cp-node-2", "designate_successor:cp-node-3"]);
  });

  it("a designee whose wait just ended is re-designated only after a pause", () => {
    const ended = (ago: number) => ({ ...healthyCluster(NOW), designation: { nodeId: "cp-node-2", sentAtMs: NOW - 70_000, waitMs: 60_000, active: false, endedAtMs: NOW - ago } });
    expect(kinds(decide(ended(100), designating, NOW))).toEqual(["leader_healthy"]);
    expect(kinds(decide(ended(2_000), designating, NOW))).toEqual(["leader_healthy", "designate_successor"]);
  });

  it("when the lock is free and the designee is queued on it, the designee is left to win", () => {
    const v = { ...leaderCrashed(), designation: { nodeId: "cp-node-2", sentAtMs: NOW - 1000, waitMs: 60_000, active: true, endedAtMs: undefined } };
    expect(kinds(decide(v, designating, NOW))).toEqual(["campaign_in_flight"]);
  });

  it("paused: an active designation is released", () => {
    const v = { ...healthyCluster(NOW), maintenance: true, designation: { nodeId: "cp-node-2", sentAtMs: NOW, waitMs: 60_000, active: true, endedAtMs: undefined } };
    expect(kinds(decide(v, designating, NOW))).toEqual(["maintenance", "release_designee"]);
  });
});

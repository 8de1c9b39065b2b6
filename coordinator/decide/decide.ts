import { lockDatabaseLabel } from "../../core/lock-database.js";
import type { CoordinatorPolicy } from "../config.js";
import { detectIntruders } from "../detect/intruder.js";
import { detectSplitBrain, type SplitBrainFinding } from "../detect/split-brain.js";
import { freshClaimants, highestEpochKnown, holderOwner, isFresh, leaderOf, nodeById, supersededLockDatabase, verifyLockClaim, type ClusterView } from "../view/cluster-view.js";
import { chooseSuccessor, replicationLagStatus, type Choice } from "./successor.js";

/** Decisions that change nothing: the reason says why. */
export type WaitKind =
  | "leader_healthy"
  | "leader_slow"
  | "leader_suspect"
  | "leader_elsewhere"
  | "maintenance"
  | "auto_failover_disabled"
  | "operation_in_progress"
  | "database_unreachable"
  | "split_brain_hold"
  | "reconcile_hold"
  | "cooldown"
  | "campaign_in_flight"
  | "no_candidate"
  | "lag_gate_wait"
  | "intruder_wait"
  | "settling";

export type Decision =
  | { readonly kind: WaitKind; readonly reason: string }
  /** Order a node to take the lock (cause: the lock is free, or the leader is hung). */
  | { readonly kind: "campaign"; readonly reason: string; readonly nodeId: string; readonly epochFloor: number; readonly cause: "lock_free" | "leader_hung" }
  /** End a lock session that is no agent's (detect/intruder.ts), re-checked by pid, name and start time. */
  | { readonly kind: "terminate_intruder"; readonly reason: string; readonly pid: number; readonly applicationName: string; readonly backendStart: Date | undefined }
  /** End a hung leader's lock session so the lock becomes free. */
  | { readonly kind: "terminate_leader"; readonly reason: string; readonly nodeId: string; readonly pid: number; readonly epoch: number }
  /** Queue the best candidate on the lock (Campaign with wait_ms) so a crash hands over in ms. */
  | { readonly kind: "designate_successor"; readonly reason: string; readonly nodeId: string; readonly epochFloor: number; readonly waitMs: number }
  /** Cancel a previous designee's standing wait. */
  | { readonly kind: "release_designee"; readonly reason: string; readonly nodeId: string }
  /** Automatic promote-leader recovery of a split-brain. */
  | { readonly kind: "recover_split_brain"; readonly reason: string; readonly nodeId: string };

export type DecisionKind = Decision["kind"];

/** Re-designating the same node waits this long after its wait ended, so an agent that acks at once cannot make us spin. */
export const DESIGNATION_RETRY_MS = 1_000;

/**
 * One HA cycle: what the coordinator should do now, as decisions with a
 * stable kind and a sentence saying why. Pure: the live loop applies them.
 */
export function decide(view: ClusterView, policy: CoordinatorPolicy, nowMs: number, finding?: SplitBrainFinding): Decision[] {
  const db = view.db;
  if (!db || !db.reachable) {
    return [{ kind: "database_unreachable", reason: `lock database unreachable (${db?.error || "not read yet"}); leaving elections to the agents` }];
  }
  // An intruder is nobody's leader: ending it is safe whatever else is going
  // on (detectIntruders only lets it be ended when no agent can own it), and
  // while it holds the lock no recovery or failover can complete.
  const intruder = view.maintenance ? undefined : detectIntruders(view, policy, nowMs).find((i) => i.terminable);
  if (intruder) {
    return [{
      kind: "terminate_intruder",
      pid: intruder.pid,
      applicationName: intruder.applicationName,
      backendStart: intruder.backendStart,
      reason: `${intruder.detail}: terminate pid ${intruder.pid} (held the lock ${Math.round(intruder.heldForMs)}ms, intruder grace ${policy.intruderGraceMs}ms)`,
    }];
  }
  const split = finding ?? detectSplitBrain(view, policy, nowMs);
  if (split.detected) return splitBrain(view, policy, nowMs, split);
  if (view.operationInProgress) return [{ kind: "operation_in_progress", reason: `${view.operationInProgress} in progress; no automatic action` }];
  const undesignate = view.designation?.active
    ? [{ kind: "release_designee" as const, nodeId: view.designation.nodeId, reason: `release designated successor ${view.designation.nodeId}: automatic action is off` }]
    : [];
  if (view.maintenance) return [{ kind: "maintenance", reason: `maintenance mode: no automatic action (${situation(view, policy, nowMs)})` }, ...undesignate];
  if (view.reconcileHold) {
    return [{ kind: "reconcile_hold", reason: "manual-reconcile in effect: nobody campaigns until a failover names a node" }, ...undesignate];
  }
  if (!policy.autoFailover) return [{ kind: "auto_failover_disabled", reason: `automatic failover is off (${situation(view, policy, nowMs)})` }, ...undesignate];

  if (view.pendingCampaign && nowMs - view.pendingCampaign.sentAtMs < policy.campaignTimeoutMs) {
    return [{ kind: "campaign_in_flight", reason: `waiting for ${view.pendingCampaign.nodeId} to finish its ordered campaign` }];
  }

  const floor = highestEpochKnown(view);
  const holder = db.lockHolders[0];
  if (!holder) {
    const elsewhere = freshClaimants(view, policy, nowMs).find((n) => n.report.sessionLockHeld);
    if (elsewhere) {
      return [{ kind: "leader_elsewhere", reason: `no lock holder in the coordinator's database, but ${elsewhere.nodeId} holds the lock on ${lockDatabaseLabel(elsewhere.report.lockDatabase) || "another database"} (epoch ${elsewhere.report.epoch})` }];
    }
    // Cold start: the nodes that report in the settle window are held; the
    // best of them is ordered when it ends, not the first that connected.
    if (view.settle?.active) return [{ kind: "settling", reason: view.settle.reason }];
    const leaderless = nowMs - (view.leaderlessSinceMs ?? nowMs);
    const d = view.designation;
    const designee = d?.active ? nodeById(view, d.nodeId) : undefined;
    if (designee && isFresh(designee, policy, nowMs) && leaderless < policy.campaignTimeoutMs) {
      return [{ kind: "campaign_in_flight", reason: `the lock is free; designated successor ${designee.nodeId} is queued on it` }];
    }
    const choice = choose(view, policy, nowMs, [], leaderless >= policy.lagGateMaxWaitMs, db.leadership.holderId);
    if (choice.nodeId === undefined) return [noCandidate(choice, "the lock is free", leaderless, policy)];
    return [{ kind: "campaign", cause: "lock_free", nodeId: choice.nodeId, epochFloor: floor, reason: `the lock is free: order ${choice.nodeId} to campaign above epoch ${floor}; ${choice.reason}` }];
  }

  const owner = holderOwner(view, holder, policy, nowMs);
  if (owner.kind === "intruder") {
    return [{ kind: "intruder_wait", reason: `the lock is held by pid ${holder.pid}, which carries ${owner.nodeId}'s name but is not its agent's session; it is ended after the intruder grace (${policy.intruderGraceMs}ms)` }];
  }
  const leaderId = owner.nodeId;
  const leader = nodeById(view, leaderId);
  const epoch = db.leadership.epoch;
  const heartbeatAge = Math.round(nowMs - db.heartbeatAdvancedAtMs);
  const timeout = policy.failureTimeoutMs;
  const streamAlive = leader !== undefined && isFresh(leader, policy, nowMs);
  if (streamAlive) {
    return [
      { kind: "leader_healthy", reason: `leader ${leaderId} healthy (epoch ${epoch}): its reports arrive and its session holds the lock` },
      ...designate(view, policy, nowMs, leaderId, floor),
    ];
  }
  const silentFor = leader ? nowMs - leader.lastReportMs : Infinity;
  // What the coordinator saw of the two signals, in words: reports (the
  // agent's stream) and the heartbeat the leader writes in the lock database.
  const reports = leader
    ? `no report from it for ${Math.round(silentFor)}ms (its stream is ${leader.connected ? "open but silent" : "closed"})`
    : "it has never reported to this coordinator";
  const heartbeat = `its heartbeat in the lock database last advanced ${heartbeatAge}ms ago`;
  if (heartbeatAge < timeout) {
    return [
      {
        kind: "leader_slow",
        reason: `leader ${leaderId} (epoch ${epoch}): ${reports}, but its session still holds the lock and ${heartbeat}, within the failure timeout ${timeout}ms: it is alive, no failover`,
      },
      ...designate(view, policy, nowMs, leaderId, floor),
    ];
  }
  if (silentFor < timeout) {
    return [{
      kind: "leader_suspect",
      reason: `leader ${leaderId} (epoch ${epoch}): ${heartbeat}, past the failure timeout ${timeout}ms, but ${reports}, within it: waiting, no failover until both are past it`,
    }];
  }
  const hung = `leader ${leaderId} (epoch ${epoch}) is hung: ${heartbeat} and ${reports}, both past the failure timeout ${timeout}ms`;
  if (view.lastAutomaticFailoverMs !== undefined && nowMs - view.lastAutomaticFailoverMs < policy.failoverCooldownMs) {
    const ago = Math.round(nowMs - view.lastAutomaticFailoverMs);
    const left = policy.failoverCooldownMs - ago;
    return [{ kind: "cooldown", reason: `${hung}; but the last automatic failover was ${ago}ms ago: no failover for another ${Math.round(left)}ms (cooldown ${policy.failoverCooldownMs}ms)` }];
  }
  const choice = choose(view, policy, nowMs, [leaderId], heartbeatAge >= timeout + policy.lagGateMaxWaitMs, leaderId);
  if (choice.nodeId === undefined) return [noCandidate(choice, hung, heartbeatAge - timeout, policy)];
  return [
    { kind: "terminate_leader", nodeId: leaderId, pid: holder.pid, epoch, reason: `${hung}: terminate its lock session (pid ${holder.pid}) so the lock is free` },
    { kind: "campaign", cause: "leader_hung", nodeId: choice.nodeId, epochFloor: floor, reason: `${hung}: order ${choice.nodeId} to campaign above epoch ${floor}; ${choice.reason}` },
  ];
}

function choose(view: ClusterView, policy: CoordinatorPolicy, nowMs: number, exclude: string[], allowCriticalLag: boolean, leaderId: string | undefined): Choice {
  const ref = leaderId ? nodeById(view, leaderId)?.report.lockDatabase : undefined;
  return chooseSuccessor(view, policy, nowMs, { exclude, allowHeld: false, heldBySettle: view.settle?.held, allowCriticalLag, leaderId, lockDatabase: ref });
}

function noCandidate(choice: Choice & { nodeId: undefined }, what: string, waitedMs: number, policy: CoordinatorPolicy): Decision {
  if (choice.onlyCriticalLag) {
    const left = Math.max(0, policy.lagGateMaxWaitMs - waitedMs);
    return { kind: "lag_gate_wait", reason: `${what}, but every candidate's replay lag is critical; accepting the least-bad one in ${Math.round(left)}ms (${choice.reason})` };
  }
  return { kind: "no_candidate", reason: `${what}, but ${choice.reason}` };
}

function designate(view: ClusterView, policy: CoordinatorPolicy, nowMs: number, leaderId: string, floor: number): Decision[] {
  if (!policy.designateSuccessor) return [];
  const current = view.designation;
  const choice = choose(view, policy, nowMs, [leaderId], false, leaderId);
  if (choice.nodeId === undefined) {
    return current?.active ? [{ kind: "release_designee", nodeId: current.nodeId, reason: `release designated successor ${current.nodeId}: ${choice.reason}` }] : [];
  }
  // Hysteresis: keep a designee that is still eligible and as preferred as the
  // best by priority, so jitter in lag does not move the designation around.
  const keep = current && choice.ranked.find((c) => c.nodeId === current.nodeId);
  const target = keep && keep.priority >= choice.candidate.priority && keep.lagStatus !== "critical" ? keep.nodeId : choice.nodeId;
  if (current && current.nodeId === target) {
    const waiting = current.active && nowMs < current.sentAtMs + current.waitMs;
    const retry = !current.active && nowMs - (current.endedAtMs ?? 0) >= DESIGNATION_RETRY_MS;
    if (waiting || !retry) return [];
  }
  const out: Decision[] = [];
  if (current?.active && current.nodeId !== target) {
    out.push({ kind: "release_designee", nodeId: current.nodeId, reason: `release designated successor ${current.nodeId}: ${target} is now preferred` });
  }
  out.push({
    kind: "designate_successor",
    nodeId: target,
    epochFloor: floor,
    waitMs: policy.designationWaitMs,
    reason: `designate ${target} as successor of ${leaderId}: it waits on the lock for ${policy.designationWaitMs}ms; ${choice.reason}`,
  });
  return out;
}

function splitBrain(view: ClusterView, policy: CoordinatorPolicy, nowMs: number, finding: SplitBrainFinding): Decision[] {
  const found = finding.criteria.filter((c) => c.detected).map((c) => c.name).join(", ");
  if (view.operationInProgress) return [{ kind: "operation_in_progress", reason: `split-brain (${found}); ${view.operationInProgress} in progress` }];
  if (view.maintenance) return [{ kind: "maintenance", reason: `split-brain detected (${found}); maintenance mode: no automatic recovery` }];
  if (!policy.autoRecoverSplitBrain) {
    return [{ kind: "split_brain_hold", reason: `split-brain detected (${found}); no automatic failover until an operator recovers (automatic recovery is off)` }];
  }
  const target = recoveryTarget(view, policy, nowMs);
  if (typeof target !== "string") return [{ kind: "split_brain_hold", reason: `split-brain detected (${found}); automatic recovery impossible: ${target.why}` }];
  return [{ kind: "recover_split_brain", nodeId: target, reason: `split-brain detected (${found}); promote ${target}, the healthy claimant with the highest epoch` }];
}

/**
 * The node promote-leader keeps: the claimant with the highest epoch whose
 * replication is healthy (not critical). A tie is ambiguous: nobody is picked.
 */
export function recoveryTarget(view: ClusterView, policy: CoordinatorPolicy, nowMs: number): string | { why: string } {
  // A claim on a primary that a promotion superseded is never crowned, whatever its epoch.
  const claimants = freshClaimants(view, policy, nowMs).filter((n) => n.report.sessionLockHeld && n.report.epoch > 0 && !supersededLockDatabase(view, n.report.lockDatabase));
  const healthy = claimants.filter((n) => replicationLagStatus(n.report, policy) !== "critical" && n.report.databaseError === "");
  if (healthy.length === 0) return { why: claimants.length === 0 ? "no node holds a term" : "every claimant's replication is critical or its database unreachable" };
  const sorted = [...healthy].sort((a, b) => b.report.epoch - a.report.epoch);
  if (sorted[1] && sorted[1].report.epoch === sorted[0]!.report.epoch) {
    return { why: `${sorted[0]!.nodeId} and ${sorted[1].nodeId} both hold epoch ${sorted[0]!.report.epoch}; ambiguous` };
  }
  // Only a claim the coordinator's own database confirms may be crowned: a
  // stream can say anything about a database the coordinator cannot read.
  const check = verifyLockClaim(view, sorted[0]!);
  if (!check.verified) return { why: `the highest claim is not confirmed by the coordinator's database: ${check.why}` };
  return sorted[0]!.nodeId;
}

/** A short description of the situation, for no-action reasons. */
function situation(view: ClusterView, policy: CoordinatorPolicy, nowMs: number): string {
  const l = leaderOf(view, policy, nowMs);
  return l.holderId ? `leader ${l.holderId}, epoch ${l.epoch}` : "no leader";
}

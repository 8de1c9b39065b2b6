import { judgeLag } from "../../core/lag.js";
import { lockDatabaseLabel, sameLockDatabase, type LockDatabaseIdentity } from "../../core/lock-database.js";
import type { LagStatus, NodeReport } from "../../core/model.js";
import { isFresh, nodeById, onDatabase, supersededLockDatabase, type ClusterView, type NodeState } from "../view/cluster-view.js";

export interface SuccessorRules {
  readonly reportStaleAfterMs: number;
  readonly lagWarnSeconds: number;
  readonly lagCriticalSeconds: number;
}

export interface ChooseOptions {
  /** The leader (or holders) to leave out. */
  readonly exclude: readonly string[];
  /** Operator failovers may name a held node; automatic ones never do. */
  readonly allowHeld: boolean;
  /** Nodes the coordinator itself holds while a cold start settles: candidates all the same. */
  readonly heldBySettle?: ReadonlySet<string>;
  /** Accept a candidate whose lag is critical when nobody else is eligible. */
  readonly allowCriticalLag: boolean;
  /** The lock database the successor must be on (the leader's), when known. */
  readonly lockDatabase?: LockDatabaseIdentity;
  /** Node whose replicas list tells sync from async (the leader, alive or last seen). */
  readonly leaderId?: string;
}

export interface Candidate {
  readonly nodeId: string;
  readonly priority: number;
  readonly lagSeconds: number;
  readonly lagStatus: LagStatus;
  readonly sync: boolean;
}

export type Choice =
  | { readonly nodeId: string; readonly candidate: Candidate; readonly reason: string; readonly ranked: readonly Candidate[] }
  | { readonly nodeId: undefined; readonly reason: string; readonly skipped: readonly string[]; readonly onlyCriticalLag: boolean };

/**
 * Patroni's rules: never a nofailover node, never one that is disconnected or
 * cannot reach the lock database, then the highest priority, the lowest
 * replay lag, and a synchronous standby before an asynchronous one. A node
 * whose lag is critical is chosen only when nobody else is eligible and the
 * caller allows it.
 */
export function chooseSuccessor(view: ClusterView, rules: SuccessorRules, nowMs: number, options: ChooseOptions): Choice {
  const skipped: string[] = [];
  const eligible: Candidate[] = [];
  const critical: Candidate[] = [];
  const syncNames = syncReplicaNames(view, options.leaderId);
  for (const n of [...view.nodes].sort((a, b) => a.nodeId.localeCompare(b.nodeId))) {
    if (options.exclude.includes(n.nodeId)) continue;
    const why = ineligibility(n, view, rules, nowMs, options);
    if (why) {
      skipped.push(`${n.nodeId} ${why.detail}`);
      continue;
    }
    const c = candidateOf(n, rules, syncNames);
    // Critical lag, or lag that cannot be measured, is a last resort.
    (c.lagStatus === "critical" || c.lagStatus === "unknown" ? critical : eligible).push(c);
  }
  let pool = eligible;
  if (pool.length === 0 && critical.length > 0) {
    if (!options.allowCriticalLag) {
      return {
        nodeId: undefined,
        reason: `no eligible successor: ${[...skipped, ...critical.map(lagProblem)].join("; ")}`,
        skipped: [...skipped, ...critical.map(lagProblem)],
        onlyCriticalLag: true,
      };
    }
    pool = critical;
  } else {
    for (const c of critical) skipped.push(lagProblem(c));
  }
  if (pool.length === 0) {
    const known = view.nodes.filter((n) => !options.exclude.includes(n.nodeId)).length;
    return {
      nodeId: undefined,
      reason: known === 0 ? "no eligible successor: no other node is known" : `no eligible successor: ${skipped.join("; ")}`,
      skipped,
      onlyCriticalLag: false,
    };
  }
  const ranked = [...pool].sort(compareCandidates);
  const best = ranked[0]!;
  const runnerUp = ranked[1];
  const why = runnerUp ? `; ahead of ${runnerUp.nodeId} (${describe(runnerUp)})` : "";
  const lagNote = best.lagStatus === "critical" || best.lagStatus === "unknown" ? ` although its lag is ${best.lagStatus} (no other candidate)` : "";
  return { nodeId: best.nodeId, candidate: best, ranked, reason: `best candidate ${best.nodeId} (${describe(best)})${lagNote}${why}` };
}

export function compareCandidates(a: Candidate, b: Candidate): number {
  return b.priority - a.priority || a.lagSeconds - b.lagSeconds || Number(b.sync) - Number(a.sync) || a.nodeId.localeCompare(b.nodeId);
}

const lagProblem = (c: Candidate) =>
  c.lagStatus === "unknown" ? `${c.nodeId} replay lag unknown (its database is unreachable)` : `${c.nodeId} replay lag critical (${c.lagSeconds}s)`;

const describe = (c: Candidate) => `priority ${c.priority}, replay lag ${c.lagSeconds}s, ${c.sync ? "sync" : "async"}`;

/** Why a node cannot take over, by a stable code and in words. */
export interface Ineligibility {
  readonly code: "nofailover" | "disconnected" | "silent" | "held" | "database_unreachable" | "fenced" | "holds_lock" | "superseded_database" | "other_database";
  readonly detail: string;
}

/**
 * The one rule for who may take over: used for the automatic choice, the
 * designated successor, and an operator's --target alike. Lag is not part of
 * it: it ranks candidates (candidateOf), and a caller decides what critical
 * lag means to it.
 */
export function ineligibility(
  n: NodeState,
  view: ClusterView,
  rules: SuccessorRules,
  nowMs: number,
  options: Pick<ChooseOptions, "allowHeld" | "lockDatabase" | "heldBySettle">,
): Ineligibility | undefined {
  const r = n.report;
  if (r.nofailover) return { code: "nofailover", detail: "has nofailover set" };
  if (!n.connected) return { code: "disconnected", detail: "is disconnected" };
  if (!isFresh(n, rules, nowMs)) return { code: "silent", detail: `has not reported for ${Math.round(nowMs - n.lastReportMs)}ms` };
  if (r.held && !options.allowHeld && !options.heldBySettle?.has(n.nodeId)) return { code: "held", detail: "is held" };
  if (r.role === "disconnected" || r.databaseError !== "") {
    return { code: "database_unreachable", detail: `cannot reach the lock database${r.databaseError ? ` (${r.databaseError})` : ""}` };
  }
  if (r.role === "fenced") return { code: "fenced", detail: "is fenced" };
  if (r.sessionLockHeld) return { code: "holds_lock", detail: "already holds the lock" };
  // A promotion moved the primary to a higher timeline: no term on the server it left behind.
  const superseded = supersededLockDatabase(view, r.lockDatabase);
  if (superseded) return { code: "superseded_database", detail: `is on a superseded primary (${superseded})` };
  const ref = options.lockDatabase;
  if (ref && sameLockDatabase(r.lockDatabase, ref) === false) {
    return { code: "other_database", detail: `is on another lock database (${lockDatabaseLabel(r.lockDatabase)}, leader on ${lockDatabaseLabel(ref)})` };
  }
  if (!ref && view.db?.reachable && onDatabase(r.lockDatabase, view.db.identity) === false) {
    return { code: "other_database", detail: `is on another lock database (${lockDatabaseLabel(r.lockDatabase)})` };
  }
  return undefined;
}

/** A node as a candidate: its priority, its replay lag judged with our thresholds, and whether it is a sync standby. */
export function candidateOf(n: NodeState, rules: SuccessorRules, syncNames: ReadonlySet<string> = new Set()): Candidate {
  const local = n.report.localDatabase;
  // A node without a local standby has no replay lag of its own to weigh; one
  // whose standby cannot be reached may be arbitrarily far behind.
  const lag = local && local.reachable ? Math.max(0, local.replayLagSeconds) : 0;
  const status = !local ? "ok" : local.reachable ? judgeLag(local.lagStatus, lag, lagThresholds(rules)) : "unknown";
  return { nodeId: n.nodeId, priority: n.report.priority, lagSeconds: round(lag), lagStatus: status, sync: syncNames.has(n.nodeId) };
}

/** A leader's replication lag (its slowest standby) judged with our thresholds. */
export function replicationLagStatus(report: NodeReport, rules: Pick<SuccessorRules, "lagWarnSeconds" | "lagCriticalSeconds">): LagStatus {
  const rep = report.replication;
  return judgeLag(rep.lagStatus, rep.maxReplayLagSeconds, lagThresholds(rules));
}

/** The coordinator's lag thresholds in the shared classifier's terms. */
export const lagThresholds = (rules: Pick<SuccessorRules, "lagWarnSeconds" | "lagCriticalSeconds">) => ({ warnSeconds: rules.lagWarnSeconds, criticalSeconds: rules.lagCriticalSeconds });

const round = (x: number) => Math.round(x * 1000) / 1000;

function syncReplicaNames(view: ClusterView, leaderId: string | undefined): Set<string> {
  const leader = leaderId ? nodeById(view, leaderId) : undefined;
  const names = new Set<string>();
  for (const r of leader?.report.replication.replicas ?? []) {
    if (r.syncState === "sync" || r.syncState === "quorum") names.add(r.applicationName);
  }
  return names;
}

import { lockDatabaseLabel, sameLockDatabase } from "../../core/lock-database.js";
import { freshClaimants, holderOwner, isFresh, onDatabase, verifyLockClaim, type ClusterView, type NodeState } from "../view/cluster-view.js";

export type CriterionName =
  | "epoch_divergence"
  | "holder_mismatch"
  | "unclosed_epochs"
  | "multiple_lock_holders"
  | "multiple_write_ready"
  | "multiple_writable_primaries";

export const CRITERIA: readonly CriterionName[] = [
  "epoch_divergence",
  "holder_mismatch",
  "unclosed_epochs",
  "multiple_lock_holders",
  "multiple_write_ready",
  "multiple_writable_primaries",
];

export interface Criterion {
  readonly name: CriterionName;
  readonly detected: boolean;
  /** The evidence in words, naming nodes and epochs. */
  readonly detail: string;
}

export interface SplitBrainFinding {
  readonly detected: boolean;
  readonly criteria: readonly Criterion[];
  readonly epochDivergence: boolean;
  readonly holderMismatch: boolean;
  readonly unclosedEpochs: number;
  /** Nodes whose claims are part of the finding. */
  readonly claimants: readonly string[];
  readonly explanation: string;
}

export interface DetectTiming {
  readonly reportStaleAfterMs: number;
  readonly holderMismatchGraceMs: number;
}

/**
 * Every split-brain criterion over one view. It compares what nodes CLAIM
 * (lock held, Write-Ready, the epoch they hold), never what they observe: a
 * node that resigned still reads an old leadership_state from its old
 * primary, and that is not a split.
 *
 * A report is only evidence of a concurrent claim if it was sent knowing the
 * other claim existed, or if the two claims are on different lock databases:
 * during a planned failover the old leader's last "I hold it" report can
 * arrive after the successor's first one, and that race is not a split.
 */
export function detectSplitBrain(view: ClusterView, timing: DetectTiming, nowMs: number): SplitBrainFinding {
  const claimants = freshClaimants(view, timing, nowMs);
  const concurrent = concurrentClaimants(claimants);
  const db = view.db?.reachable ? view.db : undefined;

  // Epoch divergence: several concurrent claims, or one claim on our database
  // that disagrees with leadership_state although both are current.
  const divergence: string[] = [];
  if (concurrent.length > 1) divergence.push(concurrent.map((n) => `${n.nodeId} reports epoch ${n.report.epoch}`).join("; "));
  if (db) {
    for (const c of claimants) {
      const same = onDatabase(c.report.lockDatabase, db.identity);
      // Both sides must be current: the report came well after the database
      // changed (not a report already in flight), and the read after the claim began.
      const current = c.lastReportMs > db.epochChangedAtMs + timing.holderMismatchGraceMs && db.readAtMs > (c.claimSinceMs ?? Infinity);
      if (same === true && current && c.report.epoch !== db.leadership.epoch) {
        divergence.push(`${c.nodeId} reports epoch ${c.report.epoch}; leadership_state.epoch = ${db.leadership.epoch}`);
      }
    }
  }

  // Holder mismatch: pg_locks vs leadership_state, both known, past the
  // moment between a lock grant and its open_epoch commit.
  const mismatch: string[] = [];
  if (db && db.leadership.holderId && nowMs - db.lockHoldersSinceMs >= timing.holderMismatchGraceMs) {
    for (const h of db.lockHolders) {
      // Owners by backend pid; a session that is no agent's is the intruder finding's (detect/intruder.ts).
      const owner = holderOwner(view, h, timing, nowMs);
      if (owner.kind !== "intruder" && owner.nodeId !== db.leadership.holderId) {
        mismatch.push(`lock held by ${owner.nodeId || `pid ${h.pid}`}; leadership_state.holder_id = ${db.leadership.holderId}`);
      }
    }
  }

  const unclosed = db ? db.unclosedEpochs.length : 0;
  const unclosedDetail = db
    ? `${unclosed} epoch${unclosed === 1 ? " has" : "s have"} resigned_at = NULL` +
      (unclosed > 0 ? ` (${[...db.unclosedEpochs].sort((a, b) => a.epoch - b.epoch).map((e) => `${e.epoch} by ${e.holderId}`).join(", ")})` : "")
    : "database not readable";

  const lockClaims = concurrent.filter((n) => n.report.sessionLockHeld);
  const lockDetail =
    lockClaims.length > 1
      ? `${names(lockClaims)} all report holding the lock`
      : db && db.lockHolders.length > 1
        ? `pg_locks shows ${db.lockHolders.length} holders: ${db.lockHolders.map((h) => h.applicationName).join(", ")}`
        : "";
  const readyClaims = concurrent.filter((n) => n.report.writeReady);
  const writable = writablePrimaries(view, timing, nowMs);

  const criteria: Criterion[] = [
    crit("epoch_divergence", divergence.join("; "), claimants.length === 1 ? `only ${claimants[0]!.nodeId} claims a term (epoch ${claimants[0]!.report.epoch})` : claimants.length === 0 ? "no node claims a term" : "no concurrent claims"),
    crit("holder_mismatch", mismatch.join("; "), db ? `lock holder and leadership_state agree (${db.leadership.holderId ?? "none"})` : "database not readable"),
    { name: "unclosed_epochs", detected: unclosed > 1, detail: unclosedDetail },
    crit("multiple_lock_holders", lockDetail, "at most one lock holder"),
    crit("multiple_write_ready", readyClaims.length > 1 ? `${names(readyClaims)} all report Write-Ready` : "", "at most one Write-Ready node"),
    crit("multiple_writable_primaries", writable.length > 1 ? `writable primaries: ${writable.join("; ")}` : "", "at most one writable primary"),
  ];
  const detected = criteria.some((c) => c.detected);
  const involved = new Set(concurrent.map((n) => n.nodeId));
  for (const c of claimants) if (divergence.some((d) => d.startsWith(`${c.nodeId} `))) involved.add(c.nodeId);
  return {
    detected,
    criteria,
    epochDivergence: criteria[0]!.detected,
    holderMismatch: criteria[1]!.detected,
    unclosedEpochs: unclosed,
    claimants: [...involved].sort(),
    explanation: explain(view, criteria, concurrent, detected, timing, nowMs),
  };
}

function crit(name: CriterionName, evidence: string, otherwise: string): Criterion {
  return evidence ? { name, detected: true, detail: evidence } : { name, detected: false, detail: otherwise };
}

const names = (nodes: readonly NodeState[]) => nodes.map((n) => `${n.nodeId} (epoch ${n.report.epoch})`).join(" and ");

function differentDatabases(a: NodeState, b: NodeState): boolean {
  return sameLockDatabase(a.report.lockDatabase, b.report.lockDatabase) === false;
}

/** Claimants that overlap in time with at least one other claim. */
function concurrentClaimants(claimants: readonly NodeState[]): NodeState[] {
  const out = new Set<NodeState>();
  for (const a of claimants) {
    for (const b of claimants) {
      if (a === b) continue;
      const reaffirmed = a.lastReportMs > (b.claimSinceMs ?? Infinity) && b.lastReportMs > (a.claimSinceMs ?? Infinity);
      if (differentDatabases(a, b) || reaffirmed) {
        out.add(a);
        out.add(b);
      }
    }
  }
  return [...out].sort((a, b) => a.nodeId.localeCompare(b.nodeId));
}

/**
 * Distinct writable servers among nodes that could act on them: a node that
 * was ordered to hold cannot, so a resolved split reads as resolved even while
 * the old primary still runs.
 */
function writablePrimaries(view: ClusterView, timing: DetectTiming, nowMs: number): string[] {
  const active = view.nodes.filter((n) => isFresh(n, timing, nowMs) && !n.report.held);
  const byLock = new Map<string, string[]>();
  const byLocal = new Map<string, string[]>();
  for (const n of active) {
    if (n.report.lockDatabaseWritable && n.report.lockDatabase) push(byLock, lockDatabaseLabel(n.report.lockDatabase), n.nodeId);
    const l = n.report.localDatabase;
    if (l && l.reachable && !l.inRecovery && l.systemIdentifier !== "") push(byLocal, `${l.systemIdentifier}/timeline ${l.timeline}`, n.nodeId);
  }
  const pick = byLock.size > 1 ? byLock : byLocal.size > 1 ? byLocal : undefined;
  if (pick) return [...pick].map(([id, nodes]) => `${id} (${nodes.join(", ")})`);
  // The coordinator's own look at every server: a fenced one accepts no term and no fenced write.
  const seen = new Map<string, string[]>();
  for (const h of view.servers ?? []) {
    if (h.reachable && !h.server.inRecovery && !h.server.fenced) push(seen, `${h.server.systemIdentifier}/tl${h.server.timeline}`, h.host);
  }
  return seen.size > 1 ? [...seen].map(([id, hosts]) => `${id} (server ${hosts.join(", ")})`) : [];
}

function push(m: Map<string, string[]>, k: string, v: string): void {
  m.set(k, [...(m.get(k) ?? []), v]);
}

function explain(view: ClusterView, criteria: readonly Criterion[], concurrent: readonly NodeState[], detected: boolean, timing: DetectTiming, nowMs: number): string {
  if (!detected) {
    const n = view.nodes.filter((x) => x.connected).length;
    return `no split-brain: ${n} connected node${n === 1 ? "" : "s"}, at most one claims write authority`;
  }
  const on = new Map(criteria.map((c) => [c.name, c.detected]));
  const lines: string[] = [];
  if (concurrent.length > 1) {
    const epochs = new Set(concurrent.map((n) => n.report.epoch));
    const dbs = new Set(concurrent.map((n) => lockDatabaseLabel(n.report.lockDatabase)).filter((x) => x !== ""));
    const top = [...concurrent].sort((a, b) => b.report.epoch - a.report.epoch);
    if (dbs.size > 1) {
      lines.push(
        `${concurrent.map((n) => `${n.nodeId} holds epoch ${n.report.epoch} on database ${lockDatabaseLabel(n.report.lockDatabase)}`).join(" while ")}: ` +
          `the nodes follow different primaries (the old primary was not fenced when another was promoted).`,
      );
    } else {
      lines.push(`${concurrent.map((n) => n.nodeId).join(" and ")} claim write authority at once (epochs ${[...epochs].join(", ")}).`);
    }
    if (epochs.size === 1) {
      lines.push(`Both hold epoch ${top[0]!.report.epoch}: the situation is ambiguous; use manual-reconcile, then fail over to the chosen node.`);
    } else {
      const check = verifyLockClaim(view, top[0]!);
      if (check.verified) {
        lines.push(`${top[0]!.nodeId} has the highest epoch (${top[0]!.report.epoch}) and the coordinator's database confirms its lock; recover with promote-leader.`);
      } else {
        // A claim nobody can check is never advice to crown it.
        lines.push(
          `${top[0]!.nodeId} reports the highest epoch (${top[0]!.report.epoch}), but its claim is unverified: ${check.why}. ` +
            `Verify on that database that ${top[0]!.nodeId}'s lock session (pid ${top[0]!.report.lockBackendPid || "not reported"}) holds the lock and that leader_epochs has its term before choosing it; until then use manual-reconcile.`,
        );
      }
    }
  }
  if (on.get("holder_mismatch")) {
    const db = view.db!;
    lines.push(
      `leadership_state names ${db.leadership.holderId} but ${db.lockHolders.map((h) => holderOwner(view, h, timing, nowMs).nodeId || `pid ${h.pid}`).join(", ")} holds the lock: ` +
        `${db.leadership.holderId} lost its session without closing its term, or the row was edited.`,
    );
  }
  if (on.get("unclosed_epochs")) {
    lines.push(`${view.db!.unclosedEpochs.length} terms were never closed: a leader crashed before writing resigned_at.`);
  }
  if (on.get("multiple_writable_primaries") && concurrent.length <= 1) {
    lines.push("Nodes are connected to more than one writable primary: fence the stale primary before any node campaigns there.");
  }
  if (on.get("epoch_divergence") && concurrent.length <= 1) {
    lines.push("A node claims an epoch that is not the database's current epoch: its term was superseded.");
  }
  return lines.join("\n");
}

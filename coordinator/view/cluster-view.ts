import { lockDatabaseLabel, sameLockDatabase, type LockDatabaseIdentity } from "../../core/lock-database.js";
import type { LeaderView, NodeReport } from "../../core/model.js";
import type { DatabaseIdentity, EpochRow, LeadershipRow, LockHolderRow } from "../../db/leadership.js";
import type { HostReading } from "../../db/server-scout.js";

/**
 * The coordinator's whole knowledge at one instant, as an immutable value:
 * every node's last report and stream liveness, the database truth it read
 * itself, and its own bookkeeping. Detection and decisions are pure functions
 * of this value (Patroni's `Cluster`), so they are tested without a network.
 * All `*Ms` fields are monotonic milliseconds of the coordinator's clock.
 */
export interface NodeState {
  readonly nodeId: string;
  /** The last accepted report; kept after the stream ends. */
  readonly report: NodeReport;
  /** Whether the node's stream is open. */
  readonly connected: boolean;
  readonly lastReportMs: number;
  /** When the node's current, uninterrupted claim (lock held or write-ready) began; undefined without one. */
  readonly claimSinceMs: number | undefined;
}

/** What the coordinator read from --database-url. */
export interface DatabaseTruth {
  readonly reachable: boolean;
  readonly error: string;
  /** When the read that produced this value started. */
  readonly readAtMs: number;
  readonly identity: DatabaseIdentity | undefined;
  readonly leadership: LeadershipRow;
  /** Sessions holding the leader lock per pg_locks, with their application_name. */
  readonly lockHolders: readonly LockHolderRow[];
  /** leader_epochs rows with resigned_at IS NULL. */
  readonly unclosedEpochs: readonly EpochRow[];
  /** When we last saw leadership_state.heartbeat_at change: judged by our clock, never the remote one. */
  readonly heartbeatAdvancedAtMs: number;
  /** When the current set of lock holders was first seen. */
  readonly lockHoldersSinceMs: number;
  /** When leadership_state.epoch took its current value. */
  readonly epochChangedAtMs: number;
}

/** A standing Campaign{wait_ms} sent to the best candidate. */
export interface Designation {
  readonly nodeId: string;
  readonly sentAtMs: number;
  readonly waitMs: number;
  /** False once the node acked (won, timed out, refused); then endedAtMs is set. */
  readonly active: boolean;
  readonly endedAtMs: number | undefined;
}

export interface ClusterView {
  readonly clusterId: string;
  readonly nodes: readonly NodeState[];
  readonly db: DatabaseTruth | undefined;
  /** Paused by an operator: findings are reported, nothing is done automatically. */
  readonly maintenance: boolean;
  /** After manual-reconcile: nobody campaigns until a failover names a node. */
  readonly reconcileHold: boolean;
  /** An admin operation (failover, recovery) owns the cluster right now. */
  readonly operationInProgress: string | undefined;
  /** The highest epoch confirmed in the lock database (kept there in epoch_floor); every campaign goes above it. */
  readonly epochFloor: number;
  readonly lastAutomaticFailoverMs: number | undefined;
  /** Since when nobody holds write authority. */
  readonly leaderlessSinceMs: number | undefined;
  readonly pendingCampaign: { readonly nodeId: string; readonly sentAtMs: number } | undefined;
  readonly designation: Designation | undefined;
  /** Every server of a multi-host --database-url as last seen (empty with one host). */
  readonly servers?: readonly HostReading[];
  /** The cold-start settle: while active no election is ordered; `held` are the nodes it holds. */
  readonly settle?: { readonly active: boolean; readonly reason: string; readonly held: ReadonlySet<string> };
}

export interface ViewTiming {
  readonly reportStaleAfterMs: number;
}

export function nodeById(view: ClusterView, nodeId: string): NodeState | undefined {
  return view.nodes.find((n) => n.nodeId === nodeId);
}

/** Connected and reported recently: its claims and health count. */
export function isFresh(node: NodeState, timing: ViewTiming, nowMs: number): boolean {
  return node.connected && nowMs - node.lastReportMs <= timing.reportStaleAfterMs;
}

export function claimsAuthority(report: NodeReport): boolean {
  return report.sessionLockHeld || report.writeReady;
}

/** Fresh nodes that claim the lock or Write-Ready. */
export function freshClaimants(view: ClusterView, timing: ViewTiming, nowMs: number): NodeState[] {
  return view.nodes.filter((n) => isFresh(n, timing, nowMs) && claimsAuthority(n.report));
}

/**
 * The highest epoch confirmed in the lock database: the floor kept there and
 * what the coordinator read itself (leadership_state, unclosed leader_epochs).
 * Report values never count: an agent's word is not confirmation, and one
 * forged highest_epoch_seen would otherwise become every later term's floor.
 */
export function highestEpochKnown(view: ClusterView): number {
  return Math.max(view.epochFloor, confirmedByDatabase(view.db));
}

/** The highest epoch a database read shows; 0 without one. */
export function confirmedByDatabase(db: DatabaseTruth | undefined): number {
  if (!db) return 0;
  return Math.max(db.leadership.epoch, ...db.unclosedEpochs.map((e) => e.epoch));
}

/**
 * Whether the lock database a node reports (system identifier and timeline,
 * typed fields of its report) is the server the coordinator reads.
 * Undefined when either is unknown.
 */
export function onDatabase(lockDatabase: LockDatabaseIdentity | undefined, identity: DatabaseIdentity | undefined): boolean | undefined {
  return sameLockDatabase(lockDatabase, identity);
}

/**
 * Whose session a lock holder is. An agent names its lock session's pid in
 * every report and gives it its node id as application_name; either alone is
 * a claim (anyone may carry a node's name, any node may report any pid), so
 * the two must agree:
 * - "node": the node its name names reports its pid; or the name is that of a
 *   node that is not fresh (a hung leader: the failure-timeout path judges
 *   it), or of a fresh node that reports no pid (an older agent, or one whose
 *   session is down); or, under a name no node has, the node the database
 *   names as holder reports its pid;
 * - "intruder": the name is that of a fresh node whose reports name another
 *   lock session pid: someone else wears its name;
 * - "unknown": the name is no known node (perhaps one that has not
 *   reconnected to a coordinator that just started).
 */
export interface HolderOwner {
  readonly kind: "node" | "intruder" | "unknown";
  /** The node it belongs to, or the name it carries. */
  readonly nodeId: string;
}

export function holderOwner(view: ClusterView, holder: LockHolderRow, timing: ViewTiming, nowMs: number): HolderOwner {
  const reportsPid = (n: NodeState) => holder.pid > 0 && n.report.lockBackendPid === holder.pid && onDatabase(n.report.lockDatabase, view.db?.identity) !== false;
  const named = nodeById(view, holder.applicationName);
  if (!named) {
    // A name no node has (a renamed session): a report of its pid is only a
    // claim, believed when the database names that node as the holder too;
    // another node's report of the pid proves nothing.
    const claimant = view.nodes.find((n) => reportsPid(n) && n.nodeId === view.db?.leadership.holderId);
    return claimant ? { kind: "node", nodeId: claimant.nodeId } : { kind: "unknown", nodeId: holder.applicationName };
  }
  // A node's own report of the pid makes the session its own; any other
  // node's report of it is a claim on a session that is not its (a forgery).
  if (reportsPid(named)) return { kind: "node", nodeId: named.nodeId };
  if (!isFresh(named, timing, nowMs)) return { kind: "node", nodeId: named.nodeId };
  // No pid to compare (an older agent, or its lock session is down): it cannot be told apart from its agent.
  if (named.report.lockBackendPid === 0) return { kind: "node", nodeId: named.nodeId };
  return { kind: "intruder", nodeId: named.nodeId };
}

/**
 * Whether a node's claim to hold the lock is confirmed by the coordinator's
 * own database: its lock_database_id names that server and its reported lock
 * session pid is a holder there. Otherwise the sentence says what could not
 * be verified.
 */
export function verifyLockClaim(view: ClusterView, node: NodeState): { readonly verified: true } | { readonly verified: false; readonly why: string } {
  const db = view.db;
  const r = node.report;
  if (!db?.reachable) return { verified: false, why: `the coordinator cannot read its lock database (${db?.error || "not read yet"})` };
  const same = onDatabase(r.lockDatabase, db.identity);
  if (same !== true) {
    const ours = lockDatabaseLabel(db.identity) || "unknown";
    return { verified: false, why: `${node.nodeId} claims the lock on database ${r.lockDatabaseId || "(not reported)"}, which is not the coordinator's lock database (${ours})` };
  }
  if (r.lockBackendPid <= 0) return { verified: false, why: `${node.nodeId} reports no lock session pid` };
  if (!db.lockHolders.some((h) => h.pid === r.lockBackendPid)) {
    const holders = db.lockHolders.map((h) => `pid ${h.pid} (${h.applicationName || "no application_name"})`).join(", ") || "nobody";
    return { verified: false, why: `${node.nodeId}'s lock session pid ${r.lockBackendPid} does not hold the lock in pg_locks (held by ${holders})` };
  }
  return { verified: true };
}

/**
 * Who holds write authority now. The database's lock holder when the
 * coordinator can see one; otherwise the fresh node claiming the lock with the
 * highest epoch (the cluster may have moved to a primary the coordinator does
 * not read); otherwise nobody. A session no agent owns (an intruder) is nobody.
 */
export function leaderOf(view: ClusterView, timing: ViewTiming, nowMs: number): LeaderView {
  const db = view.db;
  const reportOf = (id: string) => nodeById(view, id);
  const writeReadyOf = (id: string, epoch: number) => {
    const n = reportOf(id);
    return n !== undefined && isFresh(n, timing, nowMs) && n.report.writeReady && n.report.epoch === epoch;
  };
  if (db?.reachable && db.lockHolders.length > 0) {
    const owners = db.lockHolders.map((h) => holderOwner(view, h, timing, nowMs)).filter((o) => o.kind !== "intruder");
    if (owners.length === 0) {
      return { holderId: "", epoch: db.leadership.epoch, acquiredAt: undefined, writeReady: false, heartbeatAt: undefined };
    }
    const named = owners.find((o) => o.nodeId === db.leadership.holderId);
    if (named) {
      const epoch = db.leadership.epoch;
      return {
        holderId: named.nodeId,
        epoch,
        acquiredAt: db.leadership.acquiredAt,
        writeReady: writeReadyOf(named.nodeId, epoch),
        heartbeatAt: db.leadership.heartbeatAt,
      };
    }
    // Lock taken but leadership_state not (yet) naming the holder: it counts
    // once its own report claims the next term (open_epoch follows the lock
    // by milliseconds); an epoch beyond that is a claim the database cannot back.
    for (const o of owners) {
      const n = reportOf(o.nodeId);
      if (n && n.report.sessionLockHeld && n.report.epoch > db.leadership.epoch && n.report.epoch <= db.leadership.epoch + 1) {
        return {
          holderId: o.nodeId,
          epoch: n.report.epoch,
          acquiredAt: undefined,
          writeReady: writeReadyOf(o.nodeId, n.report.epoch),
          heartbeatAt: undefined,
        };
      }
    }
  }
  const claimants = view.nodes
    .filter((n) => isFresh(n, timing, nowMs) && n.report.sessionLockHeld && n.report.epoch > 0)
    // A claim on the database read here was judged above, against its lock holders.
    .filter((n) => !db?.reachable || onDatabase(n.report.lockDatabase, db.identity) === false)
    .sort((a, b) => b.report.epoch - a.report.epoch || a.nodeId.localeCompare(b.nodeId));
  const best = claimants[0];
  if (best) {
    const observed = best.report.observedLeader;
    return {
      holderId: best.nodeId,
      epoch: best.report.epoch,
      acquiredAt: observed.holderId === best.nodeId && observed.epoch === best.report.epoch ? observed.acquiredAt : undefined,
      writeReady: writeReadyOf(best.nodeId, best.report.epoch),
      heartbeatAt: observed.holderId === best.nodeId ? observed.heartbeatAt : undefined,
    };
  }
  const epoch = db?.reachable ? db.leadership.epoch : Math.max(0, ...view.nodes.map((n) => n.report.observedLeader.epoch));
  return { holderId: "", epoch, acquiredAt: undefined, writeReady: false, heartbeatAt: undefined };
}

/**
 * Why a node's lock database is superseded: the same system as the primary
 * the coordinator reads, on a lower timeline (a promotion moved past it).
 * Undefined when it is not, or when either is unknown.
 */
export function supersededLockDatabase(view: ClusterView, lockDatabase: LockDatabaseIdentity | undefined): string | undefined {
  const primary = view.db?.reachable ? view.db.identity : undefined;
  if (!primary || !lockDatabase || lockDatabase.systemIdentifier !== primary.systemIdentifier || lockDatabase.timeline >= primary.timeline) return undefined;
  return `${lockDatabaseLabel(lockDatabase)} is a superseded primary; the primary is on timeline ${primary.timeline}`;
}

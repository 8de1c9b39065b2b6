import { holderOwner, isFresh, type ClusterView } from "../view/cluster-view.js";

export interface IntruderTiming {
  readonly reportStaleAfterMs: number;
  readonly holderMismatchGraceMs: number;
  readonly intruderGraceMs: number;
}

/** A session holding the leader lock that no agent's report names. */
export interface IntruderFinding {
  readonly pid: number;
  readonly applicationName: string;
  readonly backendStart: Date | undefined;
  readonly clientAddr: string | undefined;
  /** The live node whose name it carries; undefined when the name is no known node. */
  readonly impersonates: string | undefined;
  /** How long it has held the lock, by our clock. */
  readonly heldForMs: number;
  /** Whether the coordinator may end it now (see detectIntruders). */
  readonly terminable: boolean;
  readonly detail: string;
}

/**
 * Lock holders that are no agent's session. A holder is judged only once
 * every connected, reporting node has reported well after it appeared (holder-mismatch
 * grace after the read that first saw it): an agent that took the lock names
 * its session's pid in the report it sends at once, so a holder still unnamed
 * then is nobody's.
 *
 * It is ended only when it wears the name of a node that is connected and
 * reporting (that node's own reports prove the session is not its), and only
 * after intruder-grace (at least report-stale-after, several report
 * intervals) of holding the lock. A holder named after a disconnected node is
 * not an intruder at all (holderOwner): the hung-leader path with its
 * failure-timeout judges it. A holder whose name is no known node is flagged
 * but not ended here: a coordinator that just restarted does not yet know
 * every agent, so it too is left to failure-timeout.
 */
export function detectIntruders(view: ClusterView, timing: IntruderTiming, nowMs: number): IntruderFinding[] {
  const db = view.db;
  if (!db?.reachable || db.lockHolders.length === 0) return [];
  // Every connected node that is still reporting must have reported since.
  // A connected but silent one cannot hold us up: an agent's lock session
  // carries its own node id, and a holder named after a node that is not
  // fresh is never an intruder (holderOwner), so waiting for it would only let
  // a stream that reports once and then goes quiet hide an intruder.
  const reporting = view.nodes.filter((n) => isFresh(n, timing, nowMs));
  const settledAt = db.lockHoldersSinceMs + timing.holderMismatchGraceMs;
  if (reporting.length === 0 || !reporting.every((n) => n.lastReportMs > settledAt)) return [];
  const heldForMs = nowMs - db.lockHoldersSinceMs;
  const out: IntruderFinding[] = [];
  for (const h of db.lockHolders) {
    const owner = holderOwner(view, h, timing, nowMs);
    if (owner.kind === "node") continue;
    const who = `pid ${h.pid} (application_name ${h.applicationName ? `"${h.applicationName}"` : "empty"}${h.clientAddr ? `, from ${h.clientAddr}` : ""})`;
    if (owner.kind === "intruder") {
      out.push({
        pid: h.pid,
        applicationName: h.applicationName,
        backendStart: h.backendStart,
        clientAddr: h.clientAddr,
        impersonates: owner.nodeId,
        heldForMs,
        terminable: heldForMs >= timing.intruderGraceMs,
        detail: `${who} holds the leader lock, but ${owner.nodeId}'s own reports name no such session: it is not ${owner.nodeId}'s agent`,
      });
    } else if (heldForMs >= timing.intruderGraceMs) {
      out.push({
        pid: h.pid,
        applicationName: h.applicationName,
        backendStart: h.backendStart,
        clientAddr: h.clientAddr,
        impersonates: undefined,
        heldForMs,
        terminable: false,
        detail: `${who} holds the leader lock and is no connected agent's session; it is ended only as a hung leader after failure-timeout`,
      });
    }
  }
  return out;
}

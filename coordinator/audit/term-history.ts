import type { EpochRow } from "../../db/leadership.js";
import { AuditType, type AuditEvent } from "./audit-event.js";

/** Who did what to a term: the audit event's type, operator and reason. */
export interface TermAction {
  readonly type: string;
  readonly operator: string;
  readonly reason: string;
}

export interface TermHistory extends EpochRow {
  /** The action that opened the term; undefined when its node took the free lock on its own. */
  readonly openedBy: TermAction | undefined;
  /** The action that ended it; undefined while open, or when no recorded action ended it (a resign, crash or fence of its own). */
  readonly endedBy: TermAction | undefined;
}

/** Audit times are the coordinator's clock, term times the database's: a generous margin absorbs the skew and the time an action takes to confirm. */
const SLACK_MS = 60_000;

/**
 * Attributes each term to the action that opened it and, separately, to the
 * action that ended it. An action is matched by what it did to this very
 * term (epoch and holder in its evidence), never by the epoch number alone:
 * a later recovery that merely confirmed a term did not open it.
 */
export function termHistory(rows: readonly EpochRow[], events: readonly AuditEvent[]): TermHistory[] {
  return rows.map((row) => {
    const from = row.acquiredAt.getTime() - SLACK_MS;
    const until = (row.resignedAt?.getTime() ?? Infinity) + SLACK_MS;
    const during = events.filter((e) => {
      const t = Date.parse(e.time);
      return t >= from && t <= until;
    });
    const opened = during.find((e) => opens(e, row));
    const ended = row.resignedAt ? during.find((e) => ends(e, row)) : undefined;
    return { ...row, openedBy: opened && actionOf(opened), endedBy: ended && actionOf(ended) };
  });
}

function actionOf(e: AuditEvent): TermAction {
  return { type: e.type, operator: e.operator, reason: e.reason };
}

/** The action made `row.holderId` take `row.epoch`. */
function opens(e: AuditEvent, row: EpochRow): boolean {
  if (e.node_id !== row.holderId || e.epoch !== row.epoch) return false;
  switch (e.type) {
    case AuditType.FailoverCompleted:
      return true;
    case AuditType.FailoverAutomatic:
      // Not the termination of this very term's hung session, which names the same epoch and node.
      return !Array.isArray(e.evidence["pids"]);
    case AuditType.SplitBrainRecovered:
      // promote-leader crowned it with a new term; confirming a surviving term opened nothing.
      return e.evidence["new_term"] === true;
    default:
      return false;
  }
}

/** The action ended `row`: resigned its holder, closed it, or ended its lock session. */
function ends(e: AuditEvent, row: EpochRow): boolean {
  const ev = e.evidence;
  switch (e.type) {
    case AuditType.FailoverCompleted:
      return ev["previous_holder"] === row.holderId && ev["previous_epoch"] === row.epoch;
    case AuditType.FailoverAutomatic:
      // Terminating a hung leader's lock session; the event names the term it ended.
      return Array.isArray(ev["pids"]) && e.node_id === row.holderId && e.epoch === row.epoch;
    case AuditType.SplitBrainRecovered: {
      const cleared = Array.isArray(ev["cleared"]) ? (ev["cleared"] as unknown[]) : [];
      if (cleared.includes(`closed epoch ${row.epoch} of ${row.holderId}`)) return true;
      const resigned = Array.isArray(ev["resigned_nodes"]) ? (ev["resigned_nodes"] as unknown[]) : [];
      const kept = e.node_id === row.holderId && e.epoch === row.epoch;
      return resigned.includes(row.holderId) && !kept;
    }
    default:
      return false;
  }
}

import type { EpochRecord } from "../../gen/autonomy/ha/v1/admin_pb.js";
import { num, table, timeOrNull, timeText, visible } from "./format.js";

/*
 * `autonomy ha history`: leader_epochs like `patronictl history`, one row per
 * term, then under it the action that opened the term and the action that
 * ended it, each with its operator and reason. A term its node took on its
 * own, or that ended without a recorded action, has no such line.
 */

const INDENT = "    ";

const ACTIONS: Readonly<Record<string, string>> = {
  "ha.failover.completed": "failover",
  "ha.failover.automatic": "automatic failover",
  "ha.split_brain.recovered": "split-brain recovery",
};

function actionText(type: string, operator: string, reason: string): string {
  const what = ACTIONS[type] ?? (type || "an action");
  return `${what}${operator ? ` (${operator})` : ""}${reason ? `: ${reason}` : ""}`;
}

export function historyText(epochs: readonly EpochRecord[]): string[] {
  if (epochs.length === 0) return ["No epochs recorded yet: no node has ever held write authority."];
  const [header, ...rows] = table(
    ["EPOCH", "HOLDER", "ACQUIRED", "RESIGNED", "END REASON"],
    epochs.map((e) => [
      String(num(e.epoch)),
      e.holderId || "-",
      timeText(e.acquiredAt),
      // An unset resigned_at is the open term; say so rather than print a blank.
      e.resignedAt ? timeText(e.resignedAt) : "(open)",
      e.endReason || "-",
    ]),
  );
  const lines = [header!];
  epochs.forEach((e, i) => {
    lines.push(rows[i]!);
    if (e.openedBy || e.operator) lines.push(`${INDENT}opened by ${visible(actionText(e.openedBy, e.operator, e.reason))}`);
    if (e.endedBy || e.endOperator) lines.push(`${INDENT}ended by ${visible(actionText(e.endedBy, e.endOperator, e.endActionReason))}`);
  });
  return lines;
}

export function historyJson(epochs: readonly EpochRecord[]) {
  return epochs.map((e) => ({
    epoch: num(e.epoch),
    holder_id: e.holderId,
    acquired_at: timeOrNull(e.acquiredAt),
    resigned_at: timeOrNull(e.resignedAt),
    end_reason: e.endReason,
    // The action that opened the term, and its operator and reason.
    opened_by: e.openedBy || null,
    operator: e.operator,
    reason: e.reason,
    // The action that ended it, and its operator and reason.
    ended_by: e.endedBy || null,
    end_operator: e.endOperator,
    end_action_reason: e.endActionReason,
  }));
}

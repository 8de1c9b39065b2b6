import type { EpochRecord } from "../../gen/autonomy/ha/v1/admin_pb.js";
import { num, table, timeOrNull, timeText } from "./format.js";

/* `autonomy ha history`: leader_epochs like `patronictl history`, with who asked and why. */

export function historyText(epochs: readonly EpochRecord[]): string[] {
  if (epochs.length === 0) return ["No epochs recorded yet: no node has ever held write authority."];
  return table(
    ["EPOCH", "HOLDER", "ACQUIRED", "RESIGNED", "END REASON", "OPERATOR", "REASON"],
    epochs.map((e) => [
      String(num(e.epoch)),
      e.holderId || "-",
      timeText(e.acquiredAt),
      // An unset resigned_at is the open term; say so rather than print a blank.
      e.resignedAt ? timeText(e.resignedAt) : "(open)",
      e.endReason || "-",
      e.operator || "-",
      e.reason || "-",
    ]),
  );
}

export function historyJson(epochs: readonly EpochRecord[]) {
  return epochs.map((e) => ({
    epoch: num(e.epoch),
    holder_id: e.holderId,
    acquired_at: timeOrNull(e.acquiredAt),
    resigned_at: timeOrNull(e.resignedAt),
    end_reason: e.endReason,
    operator: e.operator,
    reason: e.reason,
  }));
}

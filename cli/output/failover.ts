import type { TriggerFailoverResponse } from "../../gen/autonomy/ha/v1/admin_pb.js";
import { labelled, num, timeOrNull, timeText } from "./format.js";

/* `autonomy ha failover trigger`: seed 000 §2, plus who took over. */

export function failoverText(r: TriggerFailoverResponse): string[] {
  const rows: [string, string][] = [
    ["Previous Holder", r.previousHolder || "none"],
    ["Previous Epoch", String(num(r.previousEpoch))],
    ["Resigned At", timeText(r.resignedAt)],
  ];
  // The seed could only say who "will campaign"; we know who did, so say it.
  if (r.newHolder) rows.push(["New Holder", r.newHolder], ["New Epoch", String(num(r.newEpoch))]);
  rows.push(["Message", r.message]);
  return ["Failover triggered", ...labelled(rows, "  ", 17)];
}

/** Seed 000's JSON fields first, in its order; ours after. */
export function failoverJson(r: TriggerFailoverResponse) {
  return {
    success: r.success,
    previous_holder: r.previousHolder,
    previous_epoch: num(r.previousEpoch),
    resigned_at: timeOrNull(r.resignedAt),
    message: r.message,
    new_holder: r.newHolder,
    new_epoch: num(r.newEpoch),
    request_id: r.requestId,
  };
}

import type { SetMaintenanceResponse } from "../../gen/autonomy/ha/v1/admin_pb.js";
import { labelled, timeOrNull, timeText } from "./format.js";

/* `autonomy ha pause|resume`: the mode the cluster is in now. */

export function maintenanceText(r: SetMaintenanceResponse): string[] {
  return [
    r.paused ? "Maintenance mode on: automatic actions paused" : "Maintenance mode off: automatic actions resumed",
    ...labelled(
      [
        ["Paused", String(r.paused)],
        ["Changed At", timeText(r.changedAt)],
        ["Message", r.message],
      ],
      "  ",
      12,
    ),
  ];
}

export function maintenanceJson(r: SetMaintenanceResponse) {
  return { paused: r.paused, changed_at: timeOrNull(r.changedAt), message: r.message };
}

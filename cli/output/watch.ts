import { LeaderEventKind, type WatchLeaderResponse } from "../../gen/autonomy/ha/v1/leader_pb.js";
import { causeOf } from "../../client/leader-event.js";
import { num, oneLine, timeOrNull, timeText, visible } from "./format.js";

/*
 * `autonomy ha watch`: one line per leader-stream event. Lines are printed as
 * they arrive, so columns use fixed widths rather than widths measured over rows.
 */

/** The event kind as the client library names it ("leader_changed", …). */
export const kindName = (k: LeaderEventKind): string => (k === LeaderEventKind.UNSPECIFIED ? "unknown" : (causeOf(k) ?? `kind_${k}`));

export function watchText(e: WatchLeaderResponse): string {
  const leader = e.leader;
  const fields = [
    `#${num(e.revision)}`.padEnd(6),
    timeText(e.at).padEnd(20),
    kindName(e.kind).padEnd(20),
    `holder=${visible(leader?.holderId || "-")}`.padEnd(20),
    `epoch=${num(leader?.epoch ?? 0n)}`.padEnd(10),
    `write-ready=${leader?.writeReady ?? false}`.padEnd(17),
    oneLine(e.message),
  ];
  return fields.join(" ").trimEnd();
}

export function watchJson(e: WatchLeaderResponse) {
  return {
    revision: num(e.revision),
    at: timeOrNull(e.at),
    kind: kindName(e.kind),
    holder_id: e.leader?.holderId ?? "",
    epoch: num(e.leader?.epoch ?? 0n),
    write_ready: e.leader?.writeReady ?? false,
    acquired_at: timeOrNull(e.leader?.acquiredAt),
    message: e.message,
  };
}

import type { AuditEvent as FileAuditEvent } from "../../coordinator/audit/audit-event.js";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { AuditEvent } from "../../gen/autonomy/ha/v1/admin_pb.js";
import { isoSeconds, num, oneLine, table } from "./format.js";

/*
 * `autonomy audit query`: events come either from the coordinator's JSONL
 * files or from QueryAudit; both become this one record, named like the file's fields.
 */

/** An audit event as the file holds it (snake_case); QueryAudit answers are converted to it. */
export type AuditRecord = FileAuditEvent;

export function auditFromWire(e: AuditEvent): AuditRecord {
  return {
    id: e.id,
    time: e.time ? timestampDate(e.time).toISOString() : "",
    category: e.category,
    type: e.type,
    operator: e.operator,
    reason: e.reason,
    request_id: e.requestId,
    caller: e.caller,
    node_id: e.nodeId,
    epoch: num(e.epoch),
    cluster_id: e.clusterId,
    message: e.message,
    evidence: e.evidence ?? {},
  };
}

/** What happened, then why it was asked for. `table` shows the operator's own line breaks as \n. */
function details(e: AuditRecord): string {
  const message = oneLine(e.message);
  const reason = e.reason.trim();
  if (reason && message) return `${message} (reason: ${reason})`;
  return message || (reason ? `reason: ${reason}` : "-");
}

export function auditText(events: readonly AuditRecord[]): string[] {
  return table(
    ["TIME", "TYPE", "OPERATOR", "NODE", "EPOCH", "DETAILS"],
    events.map((e) => [
      e.time ? isoSeconds(new Date(e.time)) : "-",
      e.type || "-",
      e.operator || "-",
      e.node_id || "-",
      e.epoch > 0 ? String(e.epoch) : "-",
      details(e),
    ]),
  );
}

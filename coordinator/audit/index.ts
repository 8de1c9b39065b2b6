// The audit log: written by the coordinator, read by QueryAudit and directly
// by `autonomy audit query --audit-dir` (no server needed).
export { readAuditEvents, filterAuditEvents, type AuditReadResult } from "./audit-reader.js";
export { AuditLog, type AuditInput } from "./audit-log.js";
export { AuditType, AUDIT_FILE, DEFAULT_AUDIT_LIMIT, type AuditEvent, type AuditQuery } from "./audit-event.js";

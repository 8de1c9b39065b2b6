import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { DEFAULT_AUDIT_LIMIT, type AuditEvent, type AuditQuery } from "./audit-event.js";

export interface AuditReadResult {
  /** Matching events, oldest first (the newest `limit`). */
  readonly events: AuditEvent[];
  /** Lines that were not audit events (e.g. a torn last line after a crash). */
  readonly skippedLines: number;
}

/**
 * Reads every *.jsonl file of an audit directory and filters it. Needs no
 * server: `autonomy audit query --audit-dir` calls this directly. A missing
 * directory reads as empty, since nothing was audited yet.
 */
export async function readAuditEvents(dir: string, query: AuditQuery = {}): Promise<AuditReadResult> {
  let files: string[];
  try {
    files = (await readdir(dir)).filter((f) => f.endsWith(".jsonl")).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { events: [], skippedLines: 0 };
    throw err;
  }
  const all: AuditEvent[] = [];
  let skippedLines = 0;
  for (const f of files) {
    const text = await readFile(path.join(dir, f), "utf8");
    for (const line of text.split("\n")) {
      if (line.trim() === "") continue;
      const event = parseLine(line);
      if (event) all.push(event);
      else skippedLines++;
    }
  }
  return { events: filterAuditEvents(all, query), skippedLines };
}

/** Applies a query to events in file order; returns the newest `limit`, oldest first. */
export function filterAuditEvents(events: readonly AuditEvent[], query: AuditQuery): AuditEvent[] {
  const since = query.since?.getTime();
  const matching = events.filter(
    (e) =>
      (!query.category || e.category === query.category) &&
      (!query.type || e.type === query.type) &&
      (!query.clusterId || e.cluster_id === query.clusterId) &&
      (since === undefined || Date.parse(e.time) >= since),
  );
  // Stable by time, keeping file order for equal times.
  const sorted = matching.map((e, i) => ({ e, i, t: Date.parse(e.time) })).sort((a, b) => a.t - b.t || a.i - b.i).map((x) => x.e);
  const limit = query.limit && query.limit > 0 ? query.limit : DEFAULT_AUDIT_LIMIT;
  return sorted.slice(-limit);
}

function parseLine(line: string): AuditEvent | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof raw !== "object" || raw === null) return undefined;
  const r = raw as Record<string, unknown>;
  if (typeof r.type !== "string" || typeof r.time !== "string" || Number.isNaN(Date.parse(r.time))) return undefined;
  const str = (k: string) => (typeof r[k] === "string" ? (r[k] as string) : "");
  return {
    id: str("id"),
    time: r.time,
    category: str("category") || r.type.split(".")[0]!,
    type: r.type,
    operator: str("operator"),
    reason: str("reason"),
    request_id: str("request_id"),
    caller: str("caller"),
    node_id: str("node_id"),
    epoch: typeof r.epoch === "number" && Number.isFinite(r.epoch) ? r.epoch : 0,
    cluster_id: str("cluster_id"),
    message: str("message"),
    evidence: typeof r.evidence === "object" && r.evidence !== null && !Array.isArray(r.evidence) ? (r.evidence as Record<string, unknown>) : {},
  };
}

import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { DEFAULT_AUDIT_LIMIT, type AuditEvent, type AuditQuery } from "./audit-event.js";

export interface AuditReadResult {
  /** Matching events, oldest first (the newest `limit`). */
  readonly events: AuditEvent[];
  /** Lines that are not JSON, other than a last line still being written. */
  readonly skippedLines: number;
  /** How many *.jsonl files were read. */
  readonly files: number;
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
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { events: [], skippedLines: 0, files: 0 };
    throw err;
  }
  const all: AuditEvent[] = [];
  let skippedLines = 0;
  for (const f of files) {
    const text = await readFile(path.join(dir, f), "utf8");
    const lines = text.split("\n");
    lines.forEach((line, i) => {
      if (line.trim() === "") return;
      const event = parseLine(line);
      if (event === "not-json") {
        // A last line without its newline is still being written: not an error.
        if (i < lines.length - 1) skippedLines++;
      } else if (event) all.push(event);
    });
  }
  return { events: filterAuditEvents(all, query), skippedLines, files: files.length };
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

/** One line: an event, undefined for JSON that is no audit event (a plain log line), or "not-json". */
export function parseLine(line: string): AuditEvent | undefined | "not-json" {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return "not-json";
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return undefined;
  const r = raw as Record<string, unknown>;
  // ISO strings as we write them, or pino's epoch milliseconds.
  const time = typeof r.time === "number" || typeof r.time === "string" ? new Date(r.time) : undefined;
  if (typeof r.type !== "string" || r.type === "" || !time || Number.isNaN(time.getTime())) return undefined;
  const str = (k: string) => (typeof r[k] === "string" ? (r[k] as string) : "");
  const epoch = typeof r.epoch === "number" ? r.epoch : typeof r.epoch === "string" && /^\d+$/.test(r.epoch) ? Number(r.epoch) : 0;
  return {
    id: str("id"),
    time: time.toISOString(),
    // An event without a category belongs to its type's first segment (ha.failover.completed → ha).
    category: str("category") || r.type.split(".")[0]!,
    type: r.type,
    operator: str("operator"),
    reason: str("reason"),
    request_id: str("request_id"),
    caller: str("caller"),
    node_id: str("node_id"),
    epoch: Number.isFinite(epoch) && epoch > 0 ? epoch : 0,
    cluster_id: str("cluster_id"),
    // pino names its message field msg.
    message: str("message") || str("msg"),
    evidence: typeof r.evidence === "object" && r.evidence !== null && !Array.isArray(r.evidence) ? (r.evidence as Record<string, unknown>) : {},
  };
}

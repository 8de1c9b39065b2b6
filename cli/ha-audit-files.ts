import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { JsonObject } from "@bufbuild/protobuf";
import type { AuditRecord } from "./output/audit.js";

/*
 * Reads the coordinator's audit log straight from disk (`--audit-dir`), so the
 * runbook's `autonomy audit query` works even while no coordinator answers.
 * The coordinator appends one JSON object per line to *.jsonl files; a line
 * being written while we read is cut short, so an unparsable last line is normal.
 */

export interface AuditFilter {
  readonly category?: string | undefined;
  readonly type?: string | undefined;
  readonly since?: Date | undefined;
  readonly limit: number;
}

export interface AuditDirContents {
  readonly events: AuditRecord[];
  readonly files: number;
  /** Lines in the middle of a file that are not JSON: worth a warning. */
  readonly malformed: { readonly file: string; readonly lines: number }[];
}

export async function readAuditDir(dir: string): Promise<AuditDirContents> {
  const names = (await readdir(dir, { withFileTypes: true }))
    .filter((d) => d.isFile() && d.name.endsWith(".jsonl"))
    .map((d) => d.name)
    .sort();
  const events: AuditRecord[] = [];
  const malformed: { file: string; lines: number }[] = [];
  for (const name of names) {
    const { records, bad } = parseAuditLines(await readFile(join(dir, name), "utf8"));
    events.push(...records);
    if (bad > 0) malformed.push({ file: name, lines: bad });
  }
  return { events, files: names.length, malformed };
}

/**
 * Parses one file's text; `bad` counts lines that are not JSON, other than a
 * partial last one. JSON lines without a type (plain log lines) are skipped quietly.
 */
export function parseAuditLines(text: string): { records: AuditRecord[]; bad: number } {
  const lines = text.split("\n");
  const partialLast = !text.endsWith("\n");
  const records: AuditRecord[] = [];
  let bad = 0;
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    const parsed = parseAuditLine(line);
    if (parsed === "not-json") {
      if (!(partialLast && i === lines.length - 1)) bad++;
    } else if (parsed) records.push(parsed);
  });
  return { records, bad };
}

const str = (v: unknown): string => (typeof v === "string" ? v : "");

/** One line → a record; undefined for JSON that is not an audit event (no type). */
export function parseAuditLine(line: string): AuditRecord | undefined | "not-json" {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return "not-json";
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return undefined;
  const o = raw as Record<string, unknown>;
  const type = str(o.type);
  if (type === "") return undefined;
  return {
    id: str(o.id),
    time: timeOf(o.time),
    // An event without a category belongs to its type's first segment (ha.failover.completed → ha).
    category: str(o.category) || (type.split(".")[0] ?? ""),
    type,
    operator: str(o.operator),
    reason: str(o.reason),
    request_id: str(o.request_id),
    caller: str(o.caller),
    node_id: str(o.node_id),
    epoch: epochOf(o.epoch),
    cluster_id: str(o.cluster_id),
    // pino names its message field msg.
    message: str(o.message) || str(o.msg),
    evidence: typeof o.evidence === "object" && o.evidence !== null && !Array.isArray(o.evidence) ? (o.evidence as JsonObject) : null,
  };
}

/** ISO strings as written, or pino's epoch milliseconds. */
function timeOf(v: unknown): string {
  const d = typeof v === "number" ? new Date(v) : typeof v === "string" ? new Date(v) : undefined;
  return d && !Number.isNaN(d.getTime()) ? d.toISOString() : "";
}

function epochOf(v: unknown): number {
  const n = typeof v === "number" ? v : typeof v === "string" && /^\d+$/.test(v) ? Number(v) : 0;
  return Number.isFinite(n) && n > 0 ? n : 0;
}

/** The newest `limit` matching events, oldest first: what QueryAudit answers. */
export function selectAudit(events: readonly AuditRecord[], filter: AuditFilter): AuditRecord[] {
  const since = filter.since?.getTime();
  const matching = events
    .map((e, i) => ({ e, i, t: e.time ? Date.parse(e.time) : Number.NaN }))
    .filter(({ e, t }) => {
      if (filter.category && e.category !== filter.category) return false;
      if (filter.type && e.type !== filter.type) return false;
      if (since !== undefined && !(t >= since)) return false;
      return true;
    })
    // Events without a time sort first; ties keep file order.
    .sort((a, b) => (Number.isNaN(a.t) ? -Infinity : a.t) - (Number.isNaN(b.t) ? -Infinity : b.t) || a.i - b.i)
    .map(({ e }) => e);
  return filter.limit > 0 ? matching.slice(-filter.limit) : matching;
}

import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { formatDurationMs } from "../../core/duration.js";

/*
 * Small building blocks shared by every formatter: the runbooks print times
 * in UTC with seconds precision, lag as "12ms"/"1.5s", and blocks of
 * "Label:  value" lines whose values start in one column.
 */

/** 2026-03-18T10:00:00.123Z → "2026-03-18T10:00:00Z" (truncated, never rounded up into the future). */
export function isoSeconds(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** A wire timestamp as the runbooks print it, or null when unset. */
export function timeOrNull(t: Timestamp | undefined): string | null {
  return t ? isoSeconds(timestampDate(t)) : null;
}

/** Text form of an optional time: "-" when unset. */
export function timeText(t: Timestamp | undefined): string {
  return timeOrNull(t) ?? "-";
}

/** 0.012 → "12ms", 1.5 → "1.5s". */
export function lagText(seconds: number): string {
  return formatDurationMs(Math.max(0, seconds) * 1000);
}

/** uint64 wire values fit a JS number for any epoch a cluster will ever reach. */
export function num(n: bigint | number): number {
  return Number(n);
}

/**
 * Lines of "Label:" padded so every value starts at the same column. `width`
 * is the label field (label plus colon plus padding) so a block can line up
 * with the runbook even when its longest label is shorter.
 */
export function labelled(rows: readonly (readonly [string, string])[], indent: string, width: number): string[] {
  return rows.map(([label, value]) => `${indent}${`${label}:`.padEnd(width - 1)} ${value}`.trimEnd());
}

/** A table with a header row; columns two spaces apart, no trailing spaces. */
export function table(header: readonly string[], rows: readonly (readonly string[])[], indent = ""): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    indent + cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join("  ").trimEnd();
  return [line(header), ...rows.map(line)];
}

/** Keeps every error or server message on one line, as the CLI promises. */
export function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, " ").trim();
}

/** Output as the CLI writes it: text lines ending in a newline, or pretty JSON. */
export function jsonText(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

export function textOf(lines: readonly string[]): string {
  return `${lines.join("\n")}\n`;
}

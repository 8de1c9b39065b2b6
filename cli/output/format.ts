import type { Timestamp } from "@bufbuild/protobuf/wkt";
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
  return t ? isoSeconds(dateOf(t)) : null;
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
  return rows.map(([label, value]) => `${indent}${`${visible(label)}:`.padEnd(width - 1)} ${visible(value)}`.trimEnd());
}

/** A table with a header row; columns two spaces apart, no trailing spaces. Every cell is made `visible`. */
export function table(header: readonly string[], cells: readonly (readonly string[])[], indent = ""): string[] {
  const rows = cells.map((r) => r.map(visible));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    indent + cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join("  ").trimEnd();
  return [line(header), ...rows.map(line)];
}

/** Keeps every error or server message on one line, as the CLI promises, any other control character made `visible`. */
export function oneLine(s: string): string {
  return visible(s.replace(/\s*\n\s*/g, " ").trim());
}

const SHORT_ESCAPES: Readonly<Record<string, string>> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/**
 * What a terminal acts on instead of printing: C0 controls (NUL, BEL, ESC,
 * CR, LF, ...), DEL, C1 controls (U+0080-U+009F: CSI, NEL, ...), the Unicode
 * line and paragraph separators, and the bidirectional overrides and
 * isolates that reorder what is displayed.
 */
// eslint-disable-next-line no-control-regex
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * Text that came from outside (operators, reasons, node ids, server messages,
 * callers), safe for a text layout: every control character is shown as an
 * escape (\x1b, \r, \n, \u0085) instead of reaching the terminal, so a value
 * can neither forge a row nor rewrite the screen. Printable text, non-ASCII
 * letters included, is kept as it is. JSON output needs none of this.
 */
export function visible(s: string): string {
  return s.replace(CONTROLS, (c) => {
    const short = SHORT_ESCAPES[c];
    if (short !== undefined) return short;
    const code = c.charCodeAt(0);
    return code < 0x80 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

/** Output as the CLI writes it: text lines ending in a newline, or pretty JSON. */
export function jsonText(value: unknown): string {
  return `${jsonLine(value, 2)}\n`;
}

// eslint-disable-next-line no-control-regex
const JSON_UNESCAPED_CONTROLS = /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * JSON.stringify, with the controls it leaves raw (DEL, C1, line separators,
 * bidi overrides) written as \u escapes too: the same JSON value, nothing a
 * terminal would act on. They can only occur inside strings, so this is safe.
 */
export function jsonLine(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(JSON_UNESCAPED_CONTROLS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

export function textOf(lines: readonly string[]): string {
  return `${lines.join("\n")}\n`;
}

/**
 * A protobuf Timestamp as a Date. The package's own timestampDate lives in a
 * module that costs every CLI start ~50 ms to load; this is the same sum.
 */
export function dateOf(t: Timestamp): Date {
  return new Date(Number(t.seconds) * 1000 + Math.floor(t.nanos / 1_000_000));
}

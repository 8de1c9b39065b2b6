import { invalidArgument } from "./errors.js";

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Parses "250ms", "5s", "1.5s", "2m" or a bare number of milliseconds.
 * `what` names the setting in the error.
 */
export function parseDuration(raw: string | number, what: string): number {
  if (typeof raw === "number") {
    if (!Number.isFinite(raw) || raw < 0) throw invalidArgument(`${what} must be a non-negative duration, got ${raw}`);
    return raw;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(raw);
  if (!m) throw invalidArgument(`${what} "${raw}" is not a duration; use e.g. 500ms, 5s or 1m`);
  return Math.round(Number(m[1]) * units[m[2] ?? "ms"]!);
}

/** 1234 → "1.234s", 12 → "12ms": the runbooks' way of printing lag. */
export function formatDurationMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${Number((ms / 1000).toFixed(3))}s`;
  return `${Number((ms / 60_000).toFixed(2))}m`;
}

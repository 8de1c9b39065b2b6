import { UsageError } from "./exit-codes.js";

export { parseFlags, type OptionSpec } from "../core/flags.js";

/** Parses a whole number flag, or throws a usage error that says what was wrong. */
export function intFlag(command: string, name: string, raw: string | undefined, fallback: number, min = 0): number {
  if (raw === undefined) return fallback;
  if (!/^-?\d+$/.test(raw) || Number(raw) < min) {
    throw new UsageError(`--${name} must be a whole number >= ${min}, got "${raw}"`, command);
  }
  return Number(raw);
}

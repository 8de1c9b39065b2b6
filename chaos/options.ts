// `npm run chaos -- --seed N --duration S [--faults list] [--nodes N] [--coordinators N] [--slow-writes MS] [--out FILE]`

import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { FAULT_HELP, FAULT_KINDS, isFaultKind, type FaultKind } from "./faults.js";

export interface ChaosOptions {
  readonly seed: number;
  readonly durationMs: number;
  readonly faults: readonly FaultKind[];
  readonly nodes: number;
  /** Coordinators in the tier (one active, the others standbys), as deployed. */
  readonly coordinators: number;
  /** Every workload transaction sleeps this long inside the transaction (0: not at all). */
  readonly slowWritesMs: number;
  readonly out: string;
  /** Keep the run's directory (logs, audit, data) after the run. */
  readonly keep: boolean;
  readonly verbose: boolean;
}

/** Bad input: printed with the usage, exit code 2. */
export class UsageError extends Error {}

export const USAGE = `usage: npm run chaos -- --seed N --duration S [options]

  --seed N           the schedule's seed (a whole number); the same seed gives the same faults
  --duration S       seconds of faults (at least 10)
  --faults LIST      comma-separated fault kinds (default: all)
  --nodes N          agents (default 3, at least 3)
  --coordinators N   coordinators in the tier, one active (default 3, as docs/coordinator-ha.md deploys them)
  --slow-writes MS   every workload transaction sleeps MS inside the transaction (default 0)
  --out FILE         where the JSON history goes (default: chaos-seed-N-<time>.json in the temp dir)
  --keep             keep the run's directory (agent and coordinator logs, audit log)
  --verbose          print every fault and progress line as it happens

fault kinds:
${FAULT_KINDS.map((k) => `  ${k.padEnd(26)}${FAULT_HELP[k]}`).join("\n")}`;

export function parseChaosArgs(argv: readonly string[]): ChaosOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: {
        seed: { type: "string" },
        duration: { type: "string" },
        faults: { type: "string" },
        nodes: { type: "string" },
        coordinators: { type: "string" },
        "slow-writes": { type: "string" },
        out: { type: "string" },
        keep: { type: "boolean" },
        verbose: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values;
  if (v.help) throw new UsageError("");
  if (v.seed === undefined) throw new UsageError("--seed is required, e.g. --seed 1");
  if (v.duration === undefined) throw new UsageError("--duration is required (seconds of faults), e.g. --duration 60");
  const seed = wholeNumber("--seed", v.seed, 0, 2 ** 32 - 1);
  const duration = wholeNumber("--duration", v.duration, 10, 24 * 3600);
  const nodes = v.nodes === undefined ? 3 : wholeNumber("--nodes", v.nodes, 3, 9);
  const coordinators = v.coordinators === undefined ? 3 : wholeNumber("--coordinators", v.coordinators, 1, 5);
  const slowWritesMs = v["slow-writes"] === undefined ? 0 : wholeNumber("--slow-writes", v["slow-writes"], 0, 10_000);
  const faults = v.faults === undefined ? [...FAULT_KINDS] : faultList(v.faults);
  const out = v.out ?? path.join(os.tmpdir(), `chaos-seed-${seed}-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  return { seed, durationMs: duration * 1000, faults, nodes, coordinators, slowWritesMs, out: path.resolve(out), keep: v.keep ?? false, verbose: v.verbose ?? false };
}

function wholeNumber(flag: string, text: string, min: number, max: number): number {
  if (!/^\d+$/.test(text.trim())) throw new UsageError(`${flag} must be a whole number, got "${text}"`);
  const n = Number(text);
  if (n < min || n > max) throw new UsageError(`${flag} must be between ${min} and ${max}, got ${n}`);
  return n;
}

function faultList(text: string): FaultKind[] {
  const names = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (names.length === 0) throw new UsageError(`--faults is empty; give one or more of: ${FAULT_KINDS.join(", ")}`);
  const unknown = names.filter((n) => !isFaultKind(n));
  if (unknown.length > 0) {
    throw new UsageError(`unknown fault kind${unknown.length > 1 ? "s" : ""} ${unknown.map((u) => `"${u}"`).join(", ")}; valid kinds: ${FAULT_KINDS.join(", ")}`);
  }
  return [...new Set(names as FaultKind[])];
}

import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "vitest";
import { runCommand, type CommandOutput } from "./cli-run.js";
import { AUTONOMY_BIN } from "./processes.js";

/*
 * The runbooks' commands as an operator types them: the command text, as
 * printed in the runbook, through a real `bash -c`, with `autonomy` on PATH
 * and the runbook's environment variables set. The only changes to the text
 * are the hostname substitutions a test names (seedCommand), and every one of
 * them must apply.
 *
 * Two things about the shell, neither a change to the command text:
 *  - `autonomy` is a two-line script on PATH that runs this checkout's
 *    bin/autonomy.js (the README's alias; aliases do not expand in `bash -c`);
 *  - bash runs with `-o pipefail`, so a `curl -sf … | jq .` whose curl fails
 *    fails, instead of passing as jq's empty success.
 */

let binDir: string | undefined;

function autonomyOnPath(): string {
  if (!binDir) {
    binDir = mkdtempSync(join(tmpdir(), "autonomy-shell-bin-"));
    const script = join(binDir, "autonomy");
    writeFileSync(script, `#!/bin/sh\nexec "${process.execPath}" "${AUTONOMY_BIN}" "$@"\n`);
    chmodSync(script, 0o755);
  }
  return binDir;
}

export interface ShellResult extends CommandOutput {
  readonly command: string;
  readonly env: Record<string, string>;
}

/**
 * `bash -o pipefail -c <command>` with only the AUTONOMY_* variables given
 * (the caller's own AUTONOMY_* never leak in), plus the TLS env of a secure
 * test cluster, as runCli does.
 */
export async function runShell(command: string, env: Record<string, string> = {}, timeoutMs = 90_000): Promise<ShellResult> {
  const PATH = `${autonomyOnPath()}:${process.env.PATH ?? "/usr/bin:/bin"}`;
  const ran = await runCommand("bash", ["-o", "pipefail", "-c", command], env, timeoutMs, { PATH });
  return { command, env, ...ran };
}

/** For failure messages: the command, its environment and everything it printed. */
export function describeShell(r: ShellResult): string {
  const env = Object.entries(r.env)
    .map(([k, v]) => `${k}=${v}`)
    .join(" ");
  return `$ ${r.command}\n(env: ${env})\n--- exit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

export function expectShellOk(r: ShellResult): void {
  expect(r.code, describeShell(r)).toBe(0);
  expect(r.stderr, describeShell(r)).toBe("");
}

/** stdout as one JSON document (what `| jq …` printed); fails on empty output. */
export function shellJson<T = unknown>(r: ShellResult): T {
  expect(r.stdout.trim(), describeShell(r)).not.toBe("");
  try {
    return JSON.parse(r.stdout) as T;
  } catch (err) {
    throw new Error(`stdout is not one JSON document: ${(err as Error).message}\n${describeShell(r)}`);
  }
}

/**
 * A runbook command with the runbook's hostnames replaced by the test
 * cluster's: each [from, to] must occur in the text (a substitution that no
 * longer applies is a test bug, not a silent no-op).
 */
export function seedCommand(text: string, substitutions: readonly (readonly [string, string])[] = []): string {
  let out = text;
  for (const [from, to] of substitutions) {
    if (!out.includes(from)) throw new Error(`substitution ${JSON.stringify(from)} does not occur in the runbook command:\n${text}`);
    out = out.split(from).join(to);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Shapes of the runbooks' example values.

export const ISO_SECONDS_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
const DURATION_RE = /^\d+(\.\d+)?(ms|s)$/;

/**
 * The shape a runbook's example value stands for: times, numbers, durations,
 * booleans, node names and lag states are examples; anything else is literal.
 */
export function shapeOf(example: string): RegExp {
  if (ISO_SECONDS_RE.test(example)) return ISO_SECONDS_RE;
  if (/^(true|false)$/.test(example)) return /^(true|false)$/;
  if (/^\d+$/.test(example)) return /^\d+$/;
  if (DURATION_RE.test(example)) return DURATION_RE;
  if (/^(cp-)?node-\d+$/.test(example)) return /^cp-node-\d+$/;
  if (/^(ok|warn|critical)$/.test(example)) return /^(ok|warn|critical)$/;
  return new RegExp(`^${example.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`);
}

// ---------------------------------------------------------------------------
// Text blocks: "Section" headers, "  Label:   value" lines, free body lines.

export interface BlockField {
  /** The section the field is under ("" before the first header). */
  readonly section: string;
  readonly label: string;
  readonly value: string;
  readonly indent: number;
  /** The column the value starts at. */
  readonly valueColumn: number;
}

export interface Block {
  readonly sections: string[];
  readonly fields: BlockField[];
  /** Lines that are neither headers nor fields (table rows, explanations), by section. */
  readonly body: Map<string, string[]>;
}

/**
 * A header is an unindented line with no value: "Leader", "Criteria",
 * "Explanation:". A field is "Label: value" (indented or not).
 */
export function parseBlock(text: string): Block {
  const sections: string[] = [];
  const fields: BlockField[] = [];
  const body = new Map<string, string[]>();
  let section = "";
  // Under a header written as "Explanation:", the indented lines are free text.
  let freeText = false;
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    const indent = line.length - line.trimStart().length;
    if (freeText && indent > 0) {
      body.set(section, [...(body.get(section) ?? []), line]);
      continue;
    }
    const field = /^(\s*)([A-Za-z][A-Za-z -]*):(\s+)(\S.*)$/.exec(line);
    if (field) {
      fields.push({ section, label: field[2]!, value: field[4]!.trimEnd(), indent, valueColumn: line.length - field[4]!.length });
      continue;
    }
    if (indent === 0) {
      freeText = line.trim().endsWith(":");
      section = line.trim().replace(/:$/, "");
      sections.push(section);
      continue;
    }
    body.set(section, [...(body.get(section) ?? []), line]);
  }
  return { sections, fields, body };
}

const qualified = (section: string, label: string) => (section ? `${section}/${label}` : label);

/**
 * The printed block against the runbook's example, field by field:
 *  - every header of the example, in its order;
 *  - every field under its header, in its order, at its indentation and value
 *    column, with a value of the example's shape (or as `values` checks it);
 *  - every header or field beyond the example is in `extra` ("Section" or
 *    "Section/Label"; a listed extra section covers all of its lines), and
 *    body lines appear only where the example has some or in listed extras.
 * With `layout: false` the indentation and value columns are not compared
 * (for an example whose published text lost them).
 * Returns the printed fields, "Section/Label" → value, for the caller's relations.
 */
export function expectSeedBlock(
  printed: string,
  seedExample: string,
  options: { extra: readonly string[]; values?: Record<string, (value: string) => void>; what: string; layout?: boolean },
): Map<string, string> {
  const seed = parseBlock(seedExample);
  const got = parseBlock(printed);
  const ctx = `${options.what}\n--- printed\n${printed}\n--- runbook\n${seedExample}`;
  const extra = new Set(options.extra);

  // Headers: the example's, in order; the rest listed.
  expect(got.sections.filter((s) => seed.sections.includes(s)), ctx).toEqual(seed.sections);
  expect(got.sections.filter((s) => !seed.sections.includes(s) && !extra.has(s)), `unlisted extra sections: ${ctx}`).toEqual([]);

  const values = new Map<string, string>();
  for (const f of got.fields) if (!values.has(qualified(f.section, f.label))) values.set(qualified(f.section, f.label), f.value);

  // Fields: the example's, in order, where the example puts them.
  const seedKeys = seed.fields.map((f) => qualified(f.section, f.label));
  expect(
    got.fields.map((f) => qualified(f.section, f.label)).filter((k) => seedKeys.includes(k)),
    ctx,
  ).toEqual(seedKeys);
  for (const s of seed.fields) {
    const key = qualified(s.section, s.label);
    const g = got.fields.find((f) => f.section === s.section && f.label === s.label)!;
    if (options.layout !== false) {
      expect({ field: key, indent: g.indent, valueColumn: g.valueColumn }, ctx).toEqual({ field: key, indent: s.indent, valueColumn: s.valueColumn });
    }
    const check = options.values?.[key];
    if (check) check(g.value);
    else expect(g.value, `${key}: ${ctx}`).toMatch(shapeOf(s.value));
  }
  const unlisted = got.fields
    .filter((f) => !seedKeys.includes(qualified(f.section, f.label)))
    .filter((f) => !extra.has(f.section) && !extra.has(qualified(f.section, f.label)))
    .map((f) => qualified(f.section, f.label));
  expect(unlisted, `unlisted extra fields: ${ctx}`).toEqual([]);

  // Free lines only where the example has them, or in a listed extra section.
  for (const [section, lines] of got.body) {
    if (seed.body.has(section) || extra.has(section)) continue;
    expect({ section, lines }, `unlisted lines: ${ctx}`).toEqual({ section, lines: [] });
  }
  return values;
}

// ---------------------------------------------------------------------------
// JSON documents.

function jsonShapeCheck(path: string, seedValue: unknown, got: unknown, ctx: string): void {
  if (seedValue === null) return;
  if (Array.isArray(seedValue)) {
    expect(Array.isArray(got), `${path} is an array: ${ctx}`).toBe(true);
    return;
  }
  expect(typeof got, `${path}: ${ctx}`).toBe(typeof seedValue);
  if (typeof seedValue === "string") expect(got, `${path}: ${ctx}`).toMatch(shapeOf(seedValue));
  if (typeof seedValue === "number" && Number.isInteger(seedValue)) expect(Number.isInteger(got), `${path} is an integer: ${ctx}`).toBe(true);
}

/**
 * The printed JSON against the runbook's example: every key of the example
 * (nested by "a.b" paths), with the example's type and value shape (or as
 * `values` checks it); every key beyond the example is listed in `extraKeys`
 * (a listed object covers its children).
 */
export function expectSeedJson(
  printed: unknown,
  seedExample: Record<string, unknown>,
  options: { extraKeys: readonly string[]; values?: Record<string, (value: unknown) => void>; what: string },
): void {
  const ctx = `${options.what}\n--- printed\n${JSON.stringify(printed, null, 2)}\n--- runbook\n${JSON.stringify(seedExample, null, 2)}`;
  const extra = new Set(options.extraKeys);
  const walk = (prefix: string, seed: Record<string, unknown>, got: unknown): void => {
    expect(got !== null && typeof got === "object" && !Array.isArray(got), `${prefix || "the document"} is an object: ${ctx}`).toBe(true);
    const obj = got as Record<string, unknown>;
    for (const [k, v] of Object.entries(seed)) {
      const path = prefix ? `${prefix}.${k}` : k;
      expect(Object.keys(obj), `key ${path}: ${ctx}`).toContain(k);
      const check = options.values?.[path];
      if (check) check(obj[k]);
      else if (v !== null && typeof v === "object" && !Array.isArray(v)) walk(path, v as Record<string, unknown>, obj[k]);
      else jsonShapeCheck(path, v, obj[k], ctx);
    }
    const unlisted = Object.keys(obj)
      .filter((k) => !(k in seed))
      .map((k) => (prefix ? `${prefix}.${k}` : k))
      .filter((p) => !extra.has(p));
    expect(unlisted, `unlisted extra keys: ${ctx}`).toEqual([]);
  };
  walk("", seedExample, printed);
}

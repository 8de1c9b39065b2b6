import { expect } from "vitest";
import { spawn } from "node:child_process";
import { AUTONOMY_BIN, testTls } from "./processes.js";

/** What one `autonomy …` invocation printed and how it ended. */
export interface CliResult {
  readonly args: readonly string[];
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout split into lines, without the final empty one. */
  readonly lines: string[];
}

/**
 * Runs the CLI as an operator would: a child process, flags as the runbook
 * writes them, and only the AUTONOMY_* variables the test names (so the
 * caller's shell cannot fill --operator or the URL behind the test's back).
 */
export async function runCli(args: readonly string[], env: Record<string, string> = {}, timeoutMs = 90_000): Promise<CliResult> {
  const ran = await runCommand(process.execPath, [AUTONOMY_BIN, ...args], env, timeoutMs);
  return { args, ...ran };
}

/** What a child process printed and how it ended, with stdout split into lines. */
export interface CommandOutput {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly lines: string[];
}

/**
 * Runs `file args` with only the AUTONOMY_* variables given (the caller's own
 * never leak in) plus the TLS env of a secure test cluster; killed after
 * `timeoutMs`.
 */
export function runCommand(file: string, args: readonly string[], env: Record<string, string>, timeoutMs: number, extraEnv: Record<string, string> = {}): Promise<CommandOutput> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("AUTONOMY_")));
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      env: { ...base, ...extraEnv, AUTONOMY_LOG_LEVEL: "warn", ...testTls(), ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString("utf8");
      const lines = stdout.split("\n");
      if (lines[lines.length - 1] === "") lines.pop();
      resolve({ code, stdout, stderr: Buffer.concat(err).toString("utf8"), lines });
    });
  });
}

/** For failure messages: the command and everything it printed. */
export function describeRun(r: CliResult): string {
  return `autonomy ${r.args.join(" ")}\n--- exit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

/** `2026-03-18T10:00:00Z`: the runbooks print times in UTC to the second. */
export const ISO_SECONDS = "\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}Z";

/** "  Label:   value" lines of a block → label → value (first occurrence wins). */
export function labelledValues(lines: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of lines) {
    const m = /^\s*([A-Za-z][A-Za-z -]*):\s+(.*)$/.exec(line);
    if (m && !out.has(m[1]!)) out.set(m[1]!, m[2]!);
  }
  return out;
}

/** The labels of a block, in the order printed. */
export function labelsOf(lines: readonly string[]): string[] {
  return lines.flatMap((line) => {
    const m = /^\s*([A-Za-z][A-Za-z -]*):(\s|$)/.exec(line);
    return m ? [m[1]!] : [];
  });
}

/** The command succeeded and wrote nothing on stderr. */
export function expectOk(r: CliResult): void {
  expect(r.code, describeRun(r)).toBe(0);
  expect(r.stderr, describeRun(r)).toBe("");
}

/** Refusals print nothing on stdout and exactly one line on stderr. */
export function expectOneLineError(r: CliResult, code: number, line: RegExp): void {
  expect(r.code, describeRun(r)).toBe(code);
  expect(r.stdout, describeRun(r)).toBe("");
  expect(r.stderr.endsWith("\n"), describeRun(r)).toBe(true);
  expect(r.stderr.trimEnd().split("\n"), describeRun(r)).toHaveLength(1);
  expect(r.stderr.trimEnd()).toMatch(line);
}

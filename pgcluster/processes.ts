// Process plumbing shared by the harness: polling with deadlines, running a
// command with a useful error, and inspecting the process table via /proc.
//
// "Gone" treats zombies as gone on purpose: orphaned backends are re-parented
// to PID 1, which may reap them late (or never, in some containers), yet a
// zombie holds neither the port nor the shared memory that a restart needs.

import { spawn } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";

export interface WaitOptions {
  timeoutMs: number;
  intervalMs?: number;
  /** Used in the timeout error: "timed out after 30000ms waiting for <what>". */
  what: string;
  /** Checked before each attempt: a returned error ends the wait at once (e.g. the process died). */
  abortIf?: () => Error | undefined;
}

/** Poll `condition` until it returns true; throw once the deadline passes. */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  { timeoutMs, intervalMs = 50, what, abortIf }: WaitOptions,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    const abort = abortIf?.();
    if (abort) throw abort;
    try {
      if (await condition()) return;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const cause = lastError instanceof Error ? ` (last error: ${lastError.message})` : "";
      throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}${cause}`);
    }
    await delay(intervalMs);
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Blocking sleep, only for the process 'exit' handler where nothing async runs. */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export interface RunOptions {
  label: string;
  timeoutMs: number;
  env?: NodeJS.ProcessEnv;
}

/** Run a command to completion; on failure throw with the tail of its output. */
export function runCommand(command: string, args: string[], options: RunOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], env: options.env });
    let output = "";
    const append = (chunk: Buffer): void => {
      output += chunk.toString("utf8");
      // Only the tail is ever reported; don't let a chatty tool grow memory.
      if (output.length > 64_000) output = output.slice(-32_000);
    };
    child.stdout.on("data", append);
    child.stderr.on("data", append);
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${options.label} timed out after ${options.timeoutMs}ms\n${tail(output)}`));
    }, options.timeoutMs);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`${options.label} could not start (${command}): ${err.message}`));
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(output);
      else {
        const how = signal ? `signal ${signal}` : `exit code ${code}`;
        reject(new Error(`${options.label} failed (${how}):\n${tail(output)}`));
      }
    });
  });
}

/** Last `lines` lines of a text, indented for embedding in an error message. */
export function tail(text: string, lines = 25): string {
  const all = text.trimEnd().split("\n");
  return all
    .slice(-lines)
    .map((l) => `  | ${l}`)
    .join("\n");
}

/** Last lines of a file, or a note that it cannot be read. */
export function fileTail(file: string, lines = 25): string {
  try {
    return tail(readFileSync(file, "utf8"), lines);
  } catch (err) {
    return `  (cannot read ${file}: ${(err as Error).message})`;
  }
}

interface ProcStat {
  state: string;
  ppid: number;
}

function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // "pid (comm) S ppid ..." — comm may contain spaces and parens.
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { state: rest[0] ?? "?", ppid: Number(rest[1]) };
}

const hasProc = (() => {
  try {
    readFileSync("/proc/self/stat");
    return true;
  } catch {
    return false;
  }
})();

/** True once `pid` no longer exists or is only a zombie. */
export function isProcessGone(pid: number): boolean {
  if (hasProc) {
    const stat = readStat(pid);
    return stat === undefined || stat.state === "Z" || stat.state === "X";
  }
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ESRCH";
  }
}

/** All live descendants of `pid` (children, grandchildren, ...). Linux only; [] elsewhere. */
export function descendantPids(pid: number): number[] {
  if (!hasProc) return [];
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat && stat.state !== "Z") parentOf.set(Number(entry), stat.ppid);
  }
  const result: number[] = [];
  const frontier = [pid];
  while (frontier.length > 0) {
    const parent = frontier.pop()!;
    for (const [child, ppid] of parentOf) {
      if (ppid === parent) {
        result.push(child);
        frontier.push(child);
      }
    }
  }
  return result;
}

/** The command line of `pid` with NULs turned into spaces, or undefined. */
export function processCommandLine(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ").trim();
  } catch {
    return undefined;
  }
}

/** process.kill that ignores "no such process" (the target may have just exited). */
export function signalQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
  }
}

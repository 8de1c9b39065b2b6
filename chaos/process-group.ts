// Children of the harness, each in its own process group (spawned detached),
// so a signal reaches the process and anything it started. Every group is
// killed when the harness ends: by stop() or kill(), by the exit handler
// installed here should the harness die of a thrown error, and by the
// kernel (a parent-death SIGKILL) should the harness itself be SIGKILLed.

import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, writeSync } from "node:fs";
import { withParentDeathSignal } from "../pgcluster/index.js";

const live = new Set<number>();
const everStarted: number[] = [];

/** Every process group leader this module started, for checking that none is left. */
export function startedPids(): readonly number[] {
  return everStarted;
}
let exitHandlerInstalled = false;

function killAllGroupsNow(): void {
  for (const pgid of live) signalGroup(pgid, "SIGCONT");
  for (const pgid of live) signalGroup(pgid, "SIGKILL");
  live.clear();
}

function installExitHandler(): void {
  if (exitHandlerInstalled) return;
  exitHandlerInstalled = true;
  // 'exit' runs on a normal end, process.exit() and an uncaught error.
  process.on("exit", killAllGroupsNow);
}

function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

export interface GroupOptions {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly logFile: string;
  readonly env?: NodeJS.ProcessEnv;
}

/** One child process leading its own process group, its output appended to a log file. */
export class ProcessGroup {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(readonly options: GroupOptions) {}

  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** True while SIGSTOPped by signal(). */
  get paused(): boolean {
    return this.stopped;
  }

  start(): void {
    if (this.running) throw new Error(`${this.options.name} is already running (pid ${this.child?.pid})`);
    installExitHandler();
    const fd = openSync(this.options.logFile, "a");
    try {
      writeSync(fd, `--- ${new Date().toISOString()} chaos: starting ${this.options.name}\n`);
      const [command, args] = withParentDeathSignal(this.options.command, [...this.options.args], "SIGKILL");
      this.child = spawn(command, args, {
        detached: true,
        stdio: ["ignore", fd, fd],
        env: this.options.env ?? process.env,
      });
    } finally {
      closeSync(fd);
    }
    const child = this.child;
    const pgid = child.pid;
    if (pgid === undefined) throw new Error(`could not start ${this.options.name}: ${this.options.command}`);
    live.add(pgid);
    everStarted.push(pgid);
    this.stopped = false;
    this.exited = new Promise((resolve) => {
      child.once("exit", () => {
        // The leader is gone; kill what it may have left in its group.
        signalGroup(pgid, "SIGKILL");
        live.delete(pgid);
        resolve();
      });
    });
  }

  /** Signal the whole group. SIGSTOP/SIGCONT are remembered so close() can thaw first. */
  signal(signal: NodeJS.Signals): void {
    const pid = this.child?.pid;
    if (!this.running || pid === undefined) return;
    if (signal === "SIGSTOP") this.stopped = true;
    if (signal === "SIGCONT") this.stopped = false;
    signalGroup(pid, signal);
  }

  /** SIGKILL the group and wait for the process to be reaped. */
  async kill(): Promise<void> {
    const pid = this.child?.pid;
    if (!this.running || pid === undefined) return;
    signalGroup(pid, "SIGKILL");
    this.stopped = false;
    await this.exited;
  }

  /** SIGTERM (after a SIGCONT), then SIGKILL if it has not exited within graceMs. */
  async stop(graceMs = 5_000): Promise<void> {
    const pid = this.child?.pid;
    if (!this.running || pid === undefined) return;
    signalGroup(pid, "SIGCONT");
    this.stopped = false;
    signalGroup(pid, "SIGTERM");
    const timer = setTimeout(() => signalGroup(pid, "SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

import { fork, type ChildProcess } from "node:child_process";
import path from "node:path";

/**
 * A bench load client in its own Node process, spoken to over IPC. Load runs
 * outside the measuring process so that generating it does not delay the
 * timestamps the bench takes.
 */
export class LoadChild<In, Out> {
  private readonly inbox: Out[] = [];
  private waiters: (() => void)[] = [];
  private readonly exited: Promise<void>;
  private exitMessage: string | undefined;

  constructor(
    readonly name: string,
    private readonly proc: ChildProcess,
  ) {
    proc.on("message", (m) => {
      this.inbox.push(m as Out);
      for (const w of [...this.waiters]) w();
    });
    this.exited = new Promise((resolve) =>
      proc.once("exit", (code, signal) => {
        this.exitMessage = `${name} exited (code ${code}, signal ${signal})`;
        for (const w of [...this.waiters]) w();
        resolve();
      }),
    );
  }

  /** Starts `script` (a TypeScript file next to the caller) with tsx's loader. */
  static start<In, Out>(name: string, script: URL): LoadChild<In, Out> {
    // BENCH_CPU_PROF_DIR profiles the load clients too (see coordinator-process.ts).
    const dir = process.env.BENCH_CPU_PROF_DIR;
    const profile = dir ? ["--cpu-prof", `--cpu-prof-dir=${path.resolve(dir)}`] : [];
    const proc = fork(script.pathname, [], { execArgv: ["--import", "tsx", ...profile], stdio: ["ignore", "inherit", "inherit", "ipc"] });
    return new LoadChild<In, Out>(name, proc);
  }

  get pid(): number {
    return this.proc.pid!;
  }

  send(message: In): void {
    this.proc.send(message as object);
  }

  /** The next message from the child that matches, taken out of the inbox. */
  receive<T extends Out>(match: (m: Out) => m is T, timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.name}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      const check = () => {
        const i = this.inbox.findIndex(match);
        if (i >= 0) {
          done();
          resolve(this.inbox.splice(i, 1)[0] as T);
        } else if (this.exitMessage) {
          done();
          reject(new Error(this.exitMessage));
        }
      };
      const done = () => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
      };
      this.waiters.push(check);
      check();
    });
  }

  /** Asks nicely (SIGTERM), then SIGKILL after `timeoutMs`. */
  async stop(timeoutMs = 5_000): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill("SIGTERM");
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }
}

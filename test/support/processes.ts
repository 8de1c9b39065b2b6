import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { waitFor } from "../../core/clock.js";
import { getJson as getOverHttps } from "../../cli/dev/https-get.js";

const root = new URL("../..", import.meta.url).pathname;
/** The CLI from the sources (through tsx): what every test runs, so a stale build is never what is tested. */
export const AUTONOMY_BIN = `${root}bin/autonomy.js`;

/** What spawnAutonomy runs, and at what log level. */
let spawned = { bin: AUTONOMY_BIN, logLevel: "debug" };

/**
 * From now on, spawned processes run `bin` (the compiled CLI) at the default
 * log level: what users run. The benchmarks measure that; the tests keep the
 * sources and debug logs, which they print when they fail.
 */
export function runAsDeployed(bin: string): void {
  spawned = { bin, logLevel: "info" };
}

/** The CLI that spawnAutonomy runs. */
export function spawnedBin(): string {
  return spawned.bin;
}

/** A real `autonomy` child process whose output is kept for failure messages. */
export class AutonomyProcess {
  readonly output: string[] = [];
  private exited: Promise<number | null>;

  constructor(
    readonly name: string,
    readonly proc: ChildProcess,
  ) {
    const keep = (chunk: Buffer) => {
      for (const line of chunk.toString("utf8").split("\n")) if (line) this.output.push(line);
      if (this.output.length > 2000) this.output.splice(0, this.output.length - 2000);
    };
    proc.stdout?.on("data", keep);
    proc.stderr?.on("data", keep);
    this.exited = new Promise((resolve) => proc.once("exit", (code) => resolve(code)));
  }

  get pid(): number {
    return this.proc.pid!;
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  signal(sig: NodeJS.Signals): void {
    if (this.running) this.proc.kill(sig);
  }

  /** SIGTERM and wait; SIGKILL if it does not exit in time. */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.proc.kill("SIGCONT");
    this.proc.kill("SIGTERM");
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }

  async kill(): Promise<void> {
    if (!this.running) return;
    this.proc.kill("SIGKILL");
    await this.exited;
  }

  waitExit(): Promise<number | null> {
    return this.exited;
  }

  tail(n = 40): string {
    return this.output.slice(-n).join("\n");
  }
}

export function spawnAutonomy(name: string, args: string[], env: Record<string, string> = {}): AutonomyProcess {
  const proc = spawn(process.execPath, [spawned.bin, ...args], {
    env: { ...process.env, AUTONOMY_LOG_LEVEL: spawned.logLevel, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  return new AutonomyProcess(name, proc);
}

/**
 * The TLS env (AUTONOMY_TLS_CERT/_KEY/_CA) of a secure cluster under test:
 * runCli passes it to every command, and getJson uses it for https:// URLs,
 * so one walk-through runs unchanged against a plain and a secure cluster.
 */
let testTlsEnv: Record<string, string> = {};

export function useTestTls(env: Record<string, string> | undefined): void {
  testTlsEnv = env ?? {};
}

export function testTls(): Record<string, string> {
  return testTlsEnv;
}

/** GET a JSON path; undefined when the process does not answer (yet). */
export async function getJson<T = Record<string, unknown>>(url: string): Promise<{ status: number; body: T } | undefined> {
  try {
    if (url.startsWith("https:")) {
      const read = (k: string) => (testTlsEnv[k] ? readFileSync(testTlsEnv[k]!) : undefined);
      const r = await getOverHttps(url, { ca: read("AUTONOMY_TLS_CA"), cert: read("AUTONOMY_TLS_CERT"), key: read("AUTONOMY_TLS_KEY"), timeoutMs: 2_000 });
      return { status: r.status, body: r.body as T };
    }
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    return { status: res.status, body: (await res.json()) as T };
  } catch {
    return undefined;
  }
}

export async function waitHealthy(p: AutonomyProcess, url: string, timeoutMs = 20_000): Promise<void> {
  await waitFor(
    async () => {
      if (!p.running) throw new Error(`${p.name} exited:\n${p.tail()}`);
      return (await getJson(`${url}/healthz`))?.status === 200;
    },
    { timeoutMs, what: `${p.name} to answer /healthz` },
  ).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}\n--- ${p.name} output ---\n${p.tail()}`);
  });
}

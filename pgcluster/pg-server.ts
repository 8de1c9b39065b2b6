// One PostgreSQL server (postmaster) owned by this process: start/stop/kill,
// readiness, and the few SQL helpers tests need (replay control, promote).
//
// The postmaster is spawned as a direct child of Node (through setpriv when
// we must switch to the postgres OS user), with a parent-death signal of
// SIGQUIT: if Node dies for any reason, even SIGKILL, the kernel sends the
// postmaster SIGQUIT, which is PostgreSQL's immediate shutdown. Being the
// direct parent also means we reap it ourselves, so its pid can never be
// reused behind our back while we still signal it.

import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, rmSync, writeSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import { trackPostmaster } from "./exit-cleanup.js";
import { isPortFree } from "./free-port.js";
import { pgUser } from "./pg-user.js";
import {
  delay,
  descendantPids,
  isProcessGone,
  processCommandLine,
  signalQuietly,
  tail,
  waitUntil,
} from "./processes.js";

export type StopMode = "fast" | "immediate" | "smart";

export interface PgServerOptions {
  /** "primary", "standby1", ... (also used as cluster_name / application_name). */
  name: string;
  port: number;
  /** Server directory: holds data/, postgres.log and the unix socket. */
  dir: string;
  /** Directory with the postgres binary (see findPgBinaries). */
  bindir: string;
  host?: string;
  log?: (line: string) => void;
}

/** The signals pg_ctl sends for each shutdown mode. */
const STOP_SIGNALS: Record<StopMode, NodeJS.Signals> = {
  smart: "SIGTERM",
  fast: "SIGINT",
  immediate: "SIGQUIT",
};

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 60_000;

/**
 * Startup failures worth retrying: leftovers of a killed predecessor (orphaned
 * backends still attached to the old shared memory, or its port) that vanish
 * within moments.
 */
const TRANSIENT_START_FAILURES = [/pre-existing shared memory block/, /could not bind .*Address already in use/];

export class PgServer {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** Server directory (parent of dataDir); holds postgres.log and the socket. */
  readonly dir: string;
  readonly dataDir: string;
  /** The postmaster's stdout/stderr, appended across restarts. */
  readonly logFile: string;
  readonly bindir: string;

  private child: ChildProcess | undefined;
  private alive = false;
  private exited: Promise<void> = Promise.resolve();
  private exitInfo = "";
  private frozen = false;
  private readonly log: (line: string) => void;

  constructor(options: PgServerOptions) {
    this.name = options.name;
    this.host = options.host ?? "127.0.0.1";
    this.port = options.port;
    this.dir = options.dir;
    this.dataDir = path.join(options.dir, "data");
    this.logFile = path.join(options.dir, "postgres.log");
    this.bindir = options.bindir;
    this.log = options.log ?? (() => {});
  }

  /** postgres://postgres@HOST:PORT/DB?extra — trust auth, so no password. */
  url(database = "postgres", extra: Record<string, string> = {}): string {
    const query = new URLSearchParams(extra).toString();
    return `postgres://postgres@${this.host}:${this.port}/${encodeURIComponent(database)}${query ? `?${query}` : ""}`;
  }

  /** The postmaster's pid while it runs. */
  pid(): number | undefined {
    return this.alive ? this.child?.pid : undefined;
  }

  isRunning(): boolean {
    return this.alive;
  }

  /** Start the postmaster and wait until it accepts connections. No-op if running. */
  async start(): Promise<void> {
    if (this.alive) return;
    const deadline = Date.now() + START_TIMEOUT_MS;
    // Only a predecessor we ran (and stopped or killed) can be expected to
    // release the port and shared memory shortly; anything else fails fast.
    const restarting = this.child !== undefined;
    for (;;) {
      const logOffset = this.clearStaleState();
      if (restarting) {
        await waitUntil(() => isPortFree(this.port, this.host), {
          timeoutMs: Math.max(0, deadline - Date.now()),
          what: `port ${this.host}:${this.port} to be free before restarting ${this.name}`,
        });
      } else if (!(await isPortFree(this.port, this.host))) {
        throw new Error(`${this.name}: port ${this.host}:${this.port} is already in use by another process`);
      }
      this.spawnPostmaster();
      try {
        await waitUntil(() => this.acceptsConnections(), {
          timeoutMs: Math.max(0, deadline - Date.now()),
          what: `${this.name} to accept connections on ${this.host}:${this.port}`,
          abortIf: () => (this.alive ? undefined : new Error(`${this.name} exited during startup (${this.exitInfo})`)),
        });
        this.log(`${this.name}: accepting connections on ${this.host}:${this.port} (pid ${this.pid()})`);
        return;
      } catch (err) {
        const output = this.readLogFrom(logOffset);
        const transient = TRANSIENT_START_FAILURES.some((re) => re.test(output));
        if (restarting && transient && !this.alive && Date.now() < deadline) {
          this.log(`${this.name}: previous instance not fully gone yet, retrying start`);
          await delay(100);
          continue;
        }
        if (this.alive) await this.stop("immediate").catch(() => {});
        throw new Error(`${(err as Error).message}\n${this.name} log (${this.logFile}):\n${tail(output)}`);
      }
    }
  }

  /** Shut down with pg_ctl's semantics for `mode` and wait until the postmaster has exited. */
  async stop(mode: StopMode = "fast"): Promise<void> {
    if (!this.alive || !this.child) return;
    // We own the postmaster, so we send the signal pg_ctl would send and wait
    // on the exit of our own child: exact, and no pg_ctl round trips. The
    // postmaster exits only after all its backends have.
    this.child.kill(STOP_SIGNALS[mode]);
    this.thaw();
    await this.waitForExit(`${this.name} to stop (${mode} mode)`);
    this.log(`${this.name}: stopped (${mode})`);
  }

  /**
   * Send `signal` (default SIGKILL) to the postmaster and wait until it is
   * gone. SIGKILL kills the whole server process tree at once, like a crash
   * of the machine, so that start() can follow immediately. SIGSTOP/SIGTSTP
   * freeze the whole tree (a hung server) and SIGCONT thaws it; those return
   * without waiting.
   */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const pid = this.pid();
    if (pid === undefined || !this.child) return;
    if (signal === "SIGSTOP" || signal === "SIGTSTP") {
      // Freeze the postmaster first so it cannot fork while we enumerate.
      signalQuietly(pid, "SIGSTOP");
      for (const p of descendantPids(pid)) signalQuietly(p, "SIGSTOP");
      this.frozen = true;
      return;
    }
    if (signal === "SIGCONT") {
      this.thaw();
      return;
    }
    let orphans: number[] = [];
    if (signal === "SIGKILL") {
      // Stop the postmaster so no backend is forked between listing its
      // children and killing them; SIGKILL works on stopped processes.
      signalQuietly(pid, "SIGSTOP");
      orphans = descendantPids(pid);
      this.child.kill("SIGKILL");
      for (const p of orphans) signalQuietly(p, "SIGKILL");
      this.frozen = false;
    } else {
      this.child.kill(signal);
      this.thaw();
    }
    await this.waitForExit(`${this.name} to exit after ${signal}`);
    await waitUntil(() => orphans.every(isProcessGone), {
      timeoutMs: STOP_TIMEOUT_MS,
      what: `backends of killed ${this.name} (${orphans.join(", ")}) to exit`,
    });
    this.log(`${this.name}: killed with ${signal}`);
  }

  /** stop("fast") then start(). */
  async restart(): Promise<void> {
    await this.stop("fast");
    await this.start();
  }

  /** Run one statement on a fresh connection (as superuser postgres) and return its rows. */
  async query<T = any>(sql: string, params?: unknown[]): Promise<T[]> {
    const client = this.client();
    try {
      await client.connect();
      const result = await client.query(sql, params);
      return result.rows as T[];
    } finally {
      await client.end().catch(() => {});
    }
  }

  /**
   * Pause WAL replay (standby only). WAL keeps being received; it is not
   * applied until resumeReplay(). Returns once the pause is requested: replay
   * stops before the next record, so nothing written afterwards becomes visible.
   */
  async pauseReplay(): Promise<void> {
    await this.requireStandby("pause replay");
    await this.query("SELECT pg_wal_replay_pause()");
  }

  async resumeReplay(): Promise<void> {
    await this.requireStandby("resume replay");
    await this.query("SELECT pg_wal_replay_resume()");
  }

  /** Promote a standby and wait until it accepts writes. */
  async promote(): Promise<void> {
    await this.requireStandby("promote");
    const [row] = await this.query<{ promoted: boolean }>("SELECT pg_promote(true, 60) AS promoted");
    if (!row?.promoted) throw new Error(`${this.name}: pg_promote() did not complete within 60s`);
    await waitUntil(async () => !(await this.inRecovery()), {
      timeoutMs: 30_000,
      what: `${this.name} to leave recovery after promotion`,
    });
    this.log(`${this.name}: promoted`);
  }

  /** Wait until this standby's WAL receiver is streaming from its upstream. */
  async waitForStreaming(timeoutMs = 30_000): Promise<void> {
    await waitUntil(
      async () => {
        const rows = await this.query<{ status: string }>("SELECT status FROM pg_stat_wal_receiver");
        return rows[0]?.status === "streaming";
      },
      { timeoutMs, what: `${this.name} to stream WAL (pg_stat_wal_receiver.status = 'streaming')` },
    );
  }

  /** Wait until this standby has replayed everything `upstream` had written when called. */
  async waitForReplayOf(upstream: PgServer, timeoutMs = 30_000): Promise<void> {
    await this.requireStandby("wait for replay");
    const [head] = await upstream.query<{ lsn: string }>("SELECT pg_current_wal_lsn()::text AS lsn");
    await waitUntil(
      async () => {
        const [r] = await this.query<{ ok: boolean }>("SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS ok", [head!.lsn]);
        return r?.ok === true;
      },
      { timeoutMs, what: `${this.name} to replay ${upstream.name}'s WAL up to ${head!.lsn}` },
    );
  }

  private client(): pg.Client {
    const client = new pg.Client({
      host: this.host,
      port: this.port,
      user: "postgres",
      database: "postgres",
      // Explicit, so PGSSLMODE & co. in the host environment cannot interfere.
      ssl: false,
      connectionTimeoutMillis: 5_000,
    });
    // A server killed under an open connection emits 'error' on the client;
    // the awaited call already rejects, so don't let it crash the process.
    client.on("error", () => {});
    return client;
  }

  private async acceptsConnections(): Promise<boolean> {
    await this.query("SELECT 1");
    return true;
  }

  private async inRecovery(): Promise<boolean> {
    const [row] = await this.query<{ r: boolean }>("SELECT pg_is_in_recovery() AS r");
    return row?.r === true;
  }

  private async requireStandby(action: string): Promise<void> {
    if (!(await this.inRecovery())) {
      throw new Error(`${this.name} is not a standby (pg_is_in_recovery() is false); cannot ${action}`);
    }
  }

  private spawnPostmaster(): void {
    const user = pgUser();
    const logFd = openSync(this.logFile, "a");
    let child: ChildProcess;
    try {
      user.chown(this.logFile);
      writeSync(logFd, `--- ${new Date().toISOString()} pgcluster: starting ${this.name}\n`);
      const [command, args] = user.command(path.join(this.bindir, "postgres"), ["-D", this.dataDir], {
        parentDeathSignal: "SIGQUIT",
      });
      child = spawn(command, args, { stdio: ["ignore", logFd, logFd], env: user.env(this.dir) });
    } finally {
      closeSync(logFd);
    }
    // Servers must not keep the host process alive on their own; the exit
    // handler and the parent-death signal stop them when it ends.
    child.unref();
    this.child = child;
    this.alive = true;
    this.frozen = false;
    this.exitInfo = "";
    let untrack = (): void => {};
    if (child.pid !== undefined) untrack = trackPostmaster(child.pid);
    this.exited = new Promise((resolve) => {
      const onGone = (info: string): void => {
        if (this.child === child) {
          this.alive = false;
          this.exitInfo = info;
        }
        untrack();
        resolve();
      };
      child.once("exit", (code, signal) => onGone(signal ? `signal ${signal}` : `exit code ${code}`));
      child.once("error", (err) => onGone(`spawn failed: ${err.message}`));
    });
  }

  private async waitForExit(what: string): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${STOP_TIMEOUT_MS}ms waiting for ${what}`)), STOP_TIMEOUT_MS);
    });
    try {
      await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private thaw(): void {
    const pid = this.child?.pid;
    if (!this.frozen || pid === undefined) return;
    this.frozen = false;
    for (const p of [pid, ...descendantPids(pid)]) signalQuietly(p, "SIGCONT");
  }

  /**
   * Remove a postmaster.pid left by a killed predecessor when PostgreSQL could
   * not tell it is stale itself: its pid may since belong to another process
   * of the postgres user (e.g. another test cluster's backend). Returns the
   * log size, so startup errors show only this attempt's output.
   */
  private clearStaleState(): number {
    const pidFile = path.join(this.dataDir, "postmaster.pid");
    if (existsSync(pidFile)) {
      const oldPid = Number(readFileSync(pidFile, "utf8").split("\n")[0]);
      const cmdline = Number.isInteger(oldPid) && oldPid > 0 && !isProcessGone(oldPid) ? processCommandLine(oldPid) : undefined;
      if (cmdline !== undefined && cmdline.includes(this.dataDir)) {
        throw new Error(`${this.name}: another postmaster (pid ${oldPid}) is already running on ${this.dataDir}`);
      }
      rmSync(pidFile, { force: true });
    }
    try {
      const fd = openSync(this.logFile, "r");
      try {
        return fstatSync(fd).size;
      } finally {
        closeSync(fd);
      }
    } catch {
      return 0;
    }
  }

  private readLogFrom(offset: number): string {
    try {
      const fd = openSync(this.logFile, "r");
      try {
        const size = fstatSync(fd).size;
        const buffer = Buffer.alloc(Math.max(0, size - offset));
        readSync(fd, buffer, 0, buffer.length, offset);
        return buffer.toString("utf8");
      } finally {
        closeSync(fd);
      }
    } catch {
      return "";
    }
  }
}

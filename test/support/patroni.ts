// A Patroni cluster on loopback for tests and benchmarks: one etcd member and
// three Patroni members, each managing a PostgreSQL server, all in one temp
// directory. It is the "real engine underneath" of the database-failover
// suite: Patroni moves the primary, our agents have to follow it.
//
// Process ownership. etcd and every Patroni run in their own process group
// (spawned detached) with a parent-death signal, so killing a group never
// reaches us and our death reaches them. Patroni starts each postmaster in a
// session of its own (os.setsid), so postmasters are found through their
// postmaster.pid and, as a last resort, by their data directory on the
// command line; close() and the exit handler stop them explicitly.
//
// PostgreSQL refuses to run as root: Patroni (and through it initdb, the
// postmaster, pg_basebackup) runs as the `postgres` OS user via setpriv, as
// pgcluster does, in directories that user owns.

import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { accessSync, closeSync, constants, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { findPgBinaries, freePort, withParentDeathSignal } from "../../pgcluster/index.js";
import { pgUser } from "../../pgcluster/pg-user.js";
import { descendantPids, fileTail, isProcessGone, processCommandLine, runCommand, signalQuietly, sleepSync, waitUntil } from "../../pgcluster/processes.js";

/** Patroni's timing, in seconds: what bootstrap.dcs writes into the DCS. */
export interface PatroniTimings {
  /** The leader key's lifetime: how long a dead primary keeps the key. */
  readonly ttl: number;
  /** Seconds between two HA cycles. */
  readonly loop_wait: number;
  /** How long DCS and PostgreSQL operations are retried before demoting. */
  readonly retry_timeout: number;
}

/**
 * Fast, and accepted by Patroni 3.0.2 (it validates only the types of these
 * three; etcd's own lease minimum is about 2 s). loop_wait + 2 × retry_timeout
 * ≤ ttl, the relation later Patroni versions enforce, holds.
 */
export const FAST_PATRONI: PatroniTimings = { ttl: 5, loop_wait: 1, retry_timeout: 2 };

/** Patroni's own defaults (what a cluster runs with when bootstrap.dcs says nothing). */
export const DEFAULT_PATRONI: PatroniTimings = { ttl: 30, loop_wait: 10, retry_timeout: 10 };

export interface PatroniClusterOptions {
  readonly members?: number;
  readonly timings?: PatroniTimings;
  readonly log?: (line: string) => void;
}

/** One member as Patroni's REST API reports it (GET /cluster). */
export interface PatroniMemberView {
  readonly name: string;
  /** "leader", "replica" or "sync_standby". */
  readonly role: string;
  /** "running", "starting", "stopped", "creating replica", … */
  readonly state: string;
  readonly timeline?: number;
  readonly lag?: number | string;
}

const HOST = "127.0.0.1";
const SUPERUSER = "postgres";
const REPLICATION_USER = "replicator";
const START_TIMEOUT_MS = 90_000;

/** A binary on PATH or in /usr/bin, or a clear error naming the Debian package. */
function findBinary(name: string, debianPackage: string): string {
  const dirs = [...(process.env.PATH ?? "").split(path.delimiter).filter((d) => d !== ""), "/usr/bin", "/usr/local/bin"];
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  throw new Error(
    `${name} not found on PATH or in /usr/bin: the Patroni suite needs Debian's patroni and etcd-server packages ` +
      `(apt-get install patroni etcd-server; missing: ${debianPackage}).`,
  );
}

/** The version a Patroni or etcd binary prints ("3.0.2"), or "unknown". */
export function patroniToolVersion(tool: "patroni" | "etcd"): string {
  try {
    const out = execFileSync(patroniBinaries()[tool], ["--version"], { encoding: "utf8", timeout: 10_000 });
    return /(\d+\.\d+\.\d+)/.exec(out)?.[1] ?? out.trim();
  } catch {
    return "unknown";
  }
}

export function patroniBinaries(): { patroni: string; patronictl: string; etcd: string } {
  return {
    patroni: findBinary("patroni", "patroni"),
    patronictl: findBinary("patronictl", "patroni"),
    etcd: findBinary("etcd", "etcd-server"),
  };
}

/** A child we spawned detached: its pid is its process group. */
interface Group {
  readonly child: ChildProcess;
  exited: boolean;
}

function spawnGroup(command: string, args: string[], logFile: string, env: NodeJS.ProcessEnv): Group {
  const fd = openSync(logFile, "a");
  let child: ChildProcess;
  try {
    writeSync(fd, `--- ${new Date().toISOString()} starting ${path.basename(command)}\n`);
    child = spawn(command, args, { stdio: ["ignore", fd, fd], env, detached: true });
  } finally {
    closeSync(fd);
  }
  child.unref();
  const group: Group = { child, exited: false };
  child.once("exit", () => (group.exited = true));
  child.once("error", () => (group.exited = true));
  return group;
}

function killGroup(group: Group | undefined, signal: NodeJS.Signals): void {
  const pid = group?.child.pid;
  if (pid === undefined || group!.exited) return;
  try {
    process.kill(-pid, signal);
  } catch {
    signalQuietly(pid, signal);
  }
}

export class PatroniMember {
  readonly dataDir: string;
  readonly configFile: string;
  readonly logFile: string;
  private group: Group | undefined;

  constructor(
    readonly name: string,
    readonly dir: string,
    readonly pgPort: number,
    readonly restPort: number,
  ) {
    this.dataDir = path.join(dir, "data");
    this.configFile = path.join(dir, "patroni.yml");
    this.logFile = path.join(dir, "patroni.log");
  }

  /** This member's PostgreSQL alone (trust auth). */
  url(database = "postgres"): string {
    return `postgres://${SUPERUSER}@${HOST}:${this.pgPort}/${database}`;
  }

  get restUrl(): string {
    return `http://${HOST}:${this.restPort}`;
  }

  get patroniRunning(): boolean {
    return this.group !== undefined && !this.group.exited;
  }

  /** The postmaster's pid from postmaster.pid, if the file names a live process. */
  postmasterPid(): number | undefined {
    try {
      const pid = Number(readFileSync(path.join(this.dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
      return Number.isInteger(pid) && pid > 0 && !isProcessGone(pid) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  start(patroniBin: string, env: NodeJS.ProcessEnv): void {
    if (this.patroniRunning) return;
    // SIGTERM on our death: Patroni then stops its PostgreSQL before exiting.
    const [command, args] = pgUser().command(patroniBin, [this.configFile], { parentDeathSignal: "SIGTERM" });
    this.group = spawnGroup(command, args, this.logFile, env);
  }

  /**
   * SIGKILL Patroni and its postmaster with all backends, as a crash of the
   * machine would: nothing is demoted, nothing is released, the leader key
   * stays in etcd until its ttl runs out.
   */
  async crash(): Promise<void> {
    const postmaster = this.postmasterPid();
    // Freeze the postmaster so it cannot fork while its children are listed.
    if (postmaster !== undefined) signalQuietly(postmaster, "SIGSTOP");
    const backends = postmaster !== undefined ? descendantPids(postmaster) : [];
    killGroup(this.group, "SIGKILL");
    if (postmaster !== undefined) signalQuietly(postmaster, "SIGKILL");
    for (const pid of backends) signalQuietly(pid, "SIGKILL");
    const watched = [...(this.group?.child.pid !== undefined ? [this.group.child.pid] : []), ...(postmaster !== undefined ? [postmaster] : []), ...backends];
    await waitUntil(() => watched.every(isProcessGone) && !this.patroniRunning, {
      timeoutMs: 10_000,
      intervalMs: 10,
      what: `${this.name}'s Patroni and PostgreSQL to be gone after SIGKILL`,
    });
  }

  /** SIGKILL Patroni alone, so it restarts nothing while the cluster's postmasters are stopped (see destroySync). */
  killPatroniNow(): void {
    killGroup(this.group, "SIGKILL");
  }

  logTail(lines = 30): string {
    return fileTail(this.logFile, lines);
  }
}

const live = new Set<PatroniCluster>();
let exitHandlerInstalled = false;

function installExitHandler(): void {
  if (exitHandlerInstalled) return;
  exitHandlerInstalled = true;
  process.on("exit", () => {
    for (const cluster of live) cluster.destroySync();
  });
}

export class PatroniCluster {
  readonly members: PatroniMember[] = [];
  private etcd: Group | undefined;
  private closed = false;

  private constructor(
    readonly baseDir: string,
    readonly scope: string,
    readonly timings: PatroniTimings,
    readonly etcdClientPort: number,
    private readonly etcdPeerPort: number,
    private readonly bins: ReturnType<typeof patroniBinaries>,
    private readonly env: NodeJS.ProcessEnv,
    private readonly log: (line: string) => void,
  ) {}

  /**
   * etcd, then the first member (which bootstraps the cluster with initdb),
   * then the others (which clone it with pg_basebackup); returns once every
   * member runs and both replicas stream from the leader.
   */
  static async start(options: PatroniClusterOptions = {}): Promise<PatroniCluster> {
    const bins = patroniBinaries();
    const { bindir } = findPgBinaries();
    const user = pgUser();
    const baseDir = await mkdtemp(path.join(os.tmpdir(), "autonomy-patroni-"));
    user.chown(baseDir);
    const env = user.env(baseDir);
    // Patroni is Python: keep a developer's virtualenv or PYTHONPATH out of it.
    for (const key of Object.keys(env)) if (key.startsWith("PYTHON") || key.startsWith("PYENV") || key === "VIRTUAL_ENV") delete env[key];
    env.PATH = `${bindir}:/usr/local/bin:/usr/bin:/bin`;

    const cluster = new PatroniCluster(
      baseDir,
      `autonomy-${process.pid}-${path.basename(baseDir).slice(-6)}`,
      options.timings ?? FAST_PATRONI,
      await freePort(),
      await freePort(),
      bins,
      env,
      options.log ?? (() => {}),
    );
    live.add(cluster);
    installExitHandler();
    try {
      await cluster.startEtcd();
      const count = options.members ?? 3;
      for (let i = 1; i <= count; i++) {
        const dir = path.join(baseDir, `m${i}`);
        mkdirSync(dir, { mode: 0o700 });
        user.chown(dir);
        const member = new PatroniMember(`m${i}`, dir, await freePort(), await freePort());
        writeFileSync(member.configFile, JSON.stringify(cluster.memberConfig(member, bindir), null, 2));
        user.chown(member.configFile);
        cluster.members.push(member);
      }
      const [first, ...rest] = cluster.members;
      first!.start(bins.patroni, env);
      await cluster.waitFor(async () => (await cluster.leaderName()) === first!.name, `${first!.name} to bootstrap the cluster and lead`);
      for (const m of rest) m.start(bins.patroni, env);
      await cluster.waitAllRunning();
      return cluster;
    } catch (err) {
      await cluster.close();
      throw err;
    }
  }

  private async startEtcd(): Promise<void> {
    const dir = path.join(this.baseDir, "etcd");
    mkdirSync(dir, { mode: 0o700 });
    const peer = `http://${HOST}:${this.etcdPeerPort}`;
    const client = `http://${HOST}:${this.etcdClientPort}`;
    const [command, args] = withParentDeathSignal(this.bins.etcd, [
      "--name", "etcd1",
      "--data-dir", path.join(dir, "data"),
      "--listen-client-urls", client,
      "--advertise-client-urls", client,
      "--listen-peer-urls", peer,
      "--initial-advertise-peer-urls", peer,
      "--initial-cluster", `etcd1=${peer}`,
      "--initial-cluster-state", "new",
      "--initial-cluster-token", this.scope,
      "--log-level", "warn",
    ], "SIGKILL");
    this.etcd = spawnGroup(command, args, path.join(dir, "etcd.log"), { ...process.env, ETCDCTL_API: "3" });
    await waitUntil(
      async () => {
        const r = await fetch(`${client}/health`, { signal: AbortSignal.timeout(1_000) });
        return r.ok && ((await r.json()) as { health?: string }).health === "true";
      },
      {
        timeoutMs: 20_000,
        what: `etcd to answer on ${client}`,
        abortIf: () => (this.etcd?.exited ? new Error(`etcd exited:\n${fileTail(path.join(dir, "etcd.log"))}`) : undefined),
      },
    );
    this.log(`etcd: serving on ${client}`);
  }

  private memberConfig(m: PatroniMember, bindir: string): Record<string, unknown> {
    const hba = [
      "local all all trust",
      `host all all ${HOST}/32 trust`,
      `host replication ${REPLICATION_USER} ${HOST}/32 trust`,
    ];
    return {
      scope: this.scope,
      namespace: "/autonomy-test/",
      name: m.name,
      log: { level: "INFO" },
      restapi: { listen: `${HOST}:${m.restPort}`, connect_address: `${HOST}:${m.restPort}` },
      etcd3: { hosts: [`${HOST}:${this.etcdClientPort}`] },
      bootstrap: {
        dcs: {
          ...this.timings,
          maximum_lag_on_failover: 1_048_576,
          postgresql: { use_pg_rewind: true, use_slots: true, parameters: { max_connections: 100, wal_keep_size: "128MB" } },
        },
        initdb: [{ encoding: "UTF8" }, { locale: "C" }],
        pg_hba: hba,
      },
      postgresql: {
        listen: `${HOST}:${m.pgPort}`,
        connect_address: `${HOST}:${m.pgPort}`,
        data_dir: m.dataDir,
        bin_dir: bindir,
        pgpass: path.join(m.dir, "pgpass"),
        authentication: {
          superuser: { username: SUPERUSER, password: SUPERUSER },
          replication: { username: REPLICATION_USER, password: REPLICATION_USER },
          rewind: { username: SUPERUSER, password: SUPERUSER },
        },
        // Sockets in the member's own directory: /var/run/postgresql may not exist or not be ours.
        parameters: { unix_socket_directories: m.dir, shared_buffers: "32MB", logging_collector: "on", log_directory: "log" },
        pg_hba: hba,
        // A crashed primary rejoins as a replica even when pg_rewind cannot bring it back.
        remove_data_directory_on_rewind_failure: true,
        remove_data_directory_on_diverged_timelines: true,
      },
      watchdog: { mode: "off" },
      tags: { nofailover: false, noloadbalance: false, clonefrom: false, nosync: false },
    };
  }

  /**
   * The multi-host URL our agents take: every member, the writable one chosen
   * at connect time (libpq's target_session_attrs).
   */
  get multiHostUrl(): string {
    return `postgres://${SUPERUSER}@${this.members.map((m) => `${HOST}:${m.pgPort}`).join(",")}/postgres?target_session_attrs=read-write`;
  }

  member(name: string): PatroniMember {
    const m = this.members.find((x) => x.name === name);
    if (!m) throw new Error(`no Patroni member ${name}; members: ${this.members.map((x) => x.name).join(", ")}`);
    return m;
  }

  /** GET /cluster from the first member whose REST API answers. */
  async clusterView(): Promise<PatroniMemberView[] | undefined> {
    for (const m of this.members) {
      if (!m.patroniRunning) continue;
      try {
        const r = await fetch(`${m.restUrl}/cluster`, { signal: AbortSignal.timeout(1_000) });
        if (r.ok) return ((await r.json()) as { members: PatroniMemberView[] }).members;
      } catch {
        // try the next member
      }
    }
    return undefined;
  }

  /** The member Patroni reports as leader with its PostgreSQL running, if any. */
  async leaderName(): Promise<string | undefined> {
    const view = await this.clusterView();
    return view?.find((m) => m.role === "leader" && m.state === "running")?.name;
  }

  /** Waits until Patroni reports a running leader other than `not`; returns its member. */
  async waitForLeader(options: { not?: string; timeoutMs?: number; intervalMs?: number } = {}): Promise<PatroniMember> {
    let name: string | undefined;
    await this.waitFor(
      async () => {
        name = await this.leaderName();
        return name !== undefined && name !== options.not;
      },
      options.not ? `Patroni to report a running leader other than ${options.not}` : "Patroni to report a running leader",
      options.timeoutMs,
      options.intervalMs,
    );
    return this.member(name!);
  }

  /** Every member with a running Patroni runs on the leader's timeline, and the leader streams to every replica. */
  async waitAllRunning(timeoutMs = START_TIMEOUT_MS): Promise<void> {
    const expected = this.members.filter((m) => m.patroniRunning).map((m) => m.name).sort();
    await this.waitFor(
      async () => {
        const view = await this.clusterView();
        if (!view) return false;
        const leader = view.find((m) => m.role === "leader" && m.state === "running");
        const running = view.filter((m) => m.state === "running" && m.timeline === leader?.timeline).map((m) => m.name).sort();
        if (leader === undefined || running.join() !== expected.join()) return false;
        const streaming = await this.query<{ n: string }>(leader.name, "SELECT count(*) AS n FROM pg_stat_replication WHERE state = 'streaming'");
        return Number(streaming[0]?.n) === expected.length - 1;
      },
      `members ${expected.join(", ")} running on the leader's timeline, every replica streaming from it`,
      timeoutMs,
    );
  }

  /** Runs one statement on a member's PostgreSQL. */
  async query<T extends Record<string, unknown>>(memberName: string, sql: string, params: unknown[] = []): Promise<T[]> {
    const client = new pg.Client({ connectionString: this.member(memberName).url(), connectionTimeoutMillis: 2_000 });
    client.on("error", () => {});
    try {
      await client.connect();
      return (await client.query<T>(sql, params)).rows;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** SIGKILL the current leader's Patroni and postmaster; returns its member. */
  async crashLeader(): Promise<PatroniMember> {
    const name = await this.leaderName();
    if (name === undefined) throw new Error("no running Patroni leader to crash");
    const m = this.member(name);
    await m.crash();
    this.log(`${name}: Patroni and PostgreSQL killed`);
    return m;
  }

  /** Starts a member's Patroni again (after crash()): it rejoins as a replica. */
  restartMember(name: string): void {
    this.member(name).start(this.bins.patroni, this.env);
  }

  /**
   * `patronictl switchover --leader L --candidate C --force`: Patroni demotes
   * the leader and promotes the candidate. Returns patronictl's output.
   */
  async switchover(candidate: string, leader?: string): Promise<string> {
    const current = leader ?? (await this.leaderName());
    if (current === undefined) throw new Error("switchover: no running Patroni leader");
    const configFile = this.members.find((m) => m.patroniRunning)?.configFile ?? this.members[0]!.configFile;
    return runCommand(
      this.bins.patronictl,
      ["-c", configFile, "switchover", this.scope, "--leader", current, "--candidate", candidate, "--force"],
      { label: `patronictl switchover ${current} → ${candidate}`, timeoutMs: 60_000, env: this.env },
    );
  }

  /** The last lines of every member's Patroni log, for failure messages. */
  logs(lines = 20): string {
    return this.members.map((m) => `--- ${m.name} (${m.logFile}) ---\n${m.logTail(lines)}`).join("\n");
  }

  private async waitFor(condition: () => Promise<boolean>, what: string, timeoutMs = START_TIMEOUT_MS, intervalMs = 100): Promise<void> {
    try {
      await waitUntil(condition, { timeoutMs, intervalMs, what });
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${this.logs()}`);
    }
  }

  /** Stops everything and removes the directory. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    // Synchronous on purpose: the same path as the exit handler, a few hundred ms at most.
    this.destroySync();
  }

  /**
   * Patroni first (SIGKILL, so it restarts nothing), then every postmaster of
   * ours with SIGQUIT (immediate shutdown, which also frees its shared
   * memory), SIGKILL for whatever is left after a few seconds, etcd, and the
   * directory. Runs inside the process 'exit' handler too, hence synchronous.
   */
  destroySync(): void {
    if (this.closed) return;
    this.closed = true;
    live.delete(this);
    for (const m of this.members) m.killPatroniNow();
    const postmasters = new Set<number>();
    for (const m of this.members) {
      const pid = m.postmasterPid();
      if (pid !== undefined) postmasters.add(pid);
    }
    // A postmaster Patroni was starting as it died has no postmaster.pid yet.
    for (const pid of processesMentioning(this.baseDir)) postmasters.add(pid);
    const watched: number[] = [];
    for (const pid of postmasters) {
      watched.push(pid, ...descendantPids(pid));
      signalQuietly(pid, "SIGQUIT");
      signalQuietly(pid, "SIGCONT");
    }
    const deadline = Date.now() + 5_000;
    while (watched.some((p) => !isProcessGone(p)) && Date.now() < deadline) sleepSync(20);
    for (const pid of watched) if (!isProcessGone(pid)) signalQuietly(pid, "SIGKILL");
    killGroup(this.etcd, "SIGKILL");
    for (const pid of processesMentioning(this.baseDir)) signalQuietly(pid, "SIGKILL");
    try {
      rmSync(this.baseDir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // best effort
    }
  }
}

/** Live processes whose command line names `dir` (our postmasters, Patronis and etcd). */
function processesMentioning(dir: string): number[] {
  const found: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return found;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cmd = processCommandLine(Number(entry));
    if (cmd?.includes(`${dir}/`) && !isProcessGone(Number(entry))) found.push(Number(entry));
  }
  return found;
}

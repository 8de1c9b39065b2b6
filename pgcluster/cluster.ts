// A primary with N streaming standbys in a temp directory, for tests and the
// local demo cluster. close() is the orderly teardown; the exit handler and
// the postmasters' parent-death signal cover hosts that never call it.

import { existsSync, mkdirSync, rmSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { findPgBinaries } from "./binaries.js";
import { trackDirForRemoval } from "./exit-cleanup.js";
import { freePort } from "./free-port.js";
import { PgServer } from "./pg-server.js";
import { pgUser } from "./pg-user.js";
import { waitUntil } from "./processes.js";
import { createReplicationRole, createServerDir, initPrimary, initStandby } from "./provision.js";

export interface PgClusterOptions {
  /** Default: a fresh mkdtemp under os.tmpdir() named "autonomy-pg-*"; removed on close() only if we created it. */
  baseDir?: string;
  /** Number of streaming standbys (default 1; 0 allowed). */
  standbys?: number;
  /** Default: a free port. */
  primaryPort?: number;
  /** Default: free ports. */
  standbyPorts?: number[];
  /** Default false: close() deletes the directories it created. */
  keepData?: boolean;
  /** Progress lines. */
  log?: (line: string) => void;
  /**
   * Default false. When true, the primary uses
   * synchronous_standby_names = 'FIRST 1 (standby1, standby2, ...)' and
   * startPgCluster returns once standby1 is the synchronous standby.
   */
  synchronous?: boolean;
  /**
   * Extra postgresql.conf settings for every server (written into the
   * primary's configuration before its first start, so standbys inherit
   * them), e.g. { track_commit_timestamp: true }. They win over the defaults.
   */
  settings?: Record<string, string | number | boolean>;
}

export interface PgCluster {
  readonly baseDir: string;
  readonly primary: PgServer;
  readonly standbys: PgServer[];
  /** standbys[0]; throws if the cluster has no standby. */
  readonly standby: PgServer;
  /** Stop every server (immediate mode), remove temp dirs we created. Idempotent. */
  close(): Promise<void>;
}

const HOST = "127.0.0.1";

class Cluster implements PgCluster {
  readonly standbys: PgServer[] = [];
  private primaryServer: PgServer | undefined;
  private readonly removals: { dir: string; untrack: () => void }[] = [];
  private closing: Promise<void> | undefined;

  constructor(
    readonly baseDir: string,
    private readonly keepData: boolean,
    private readonly log: (line: string) => void,
  ) {}

  get primary(): PgServer {
    if (!this.primaryServer) throw new Error("cluster has no primary (startup failed)");
    return this.primaryServer;
  }

  get standby(): PgServer {
    const first = this.standbys[0];
    if (!first) throw new Error("cluster was started with standbys: 0; it has no standby");
    return first;
  }

  setPrimary(server: PgServer): void {
    this.primaryServer = server;
  }

  /** Delete `dir` on close() (and at process exit) unless keepData. */
  removeOnClose(dir: string): void {
    if (this.keepData) return;
    this.removals.push({ dir, untrack: trackDirForRemoval(dir) });
  }

  close(): Promise<void> {
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  private async closeOnce(): Promise<void> {
    const servers = [...this.standbys, ...(this.primaryServer ? [this.primaryServer] : [])];
    const failures: string[] = [];
    await Promise.all(
      servers.map(async (server) => {
        try {
          await server.stop("immediate");
        } catch (err) {
          failures.push(`${server.name}: ${(err as Error).message}`);
          await server.kill("SIGKILL").catch(() => {});
        }
      }),
    );
    for (const { dir, untrack } of this.removals) {
      try {
        rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
        untrack();
      } catch (err) {
        failures.push(`removing ${dir}: ${(err as Error).message}`);
      }
    }
    this.log(`pgcluster: closed${this.keepData ? ` (data kept in ${this.baseDir})` : ""}`);
    if (failures.length > 0) throw new Error(`pgcluster close() had problems:\n${failures.join("\n")}`);
  }
}

/** Start a primary and `standbys` streaming standbys; resolves when all stream. */
export async function startPgCluster(options: PgClusterOptions = {}): Promise<PgCluster> {
  const started = Date.now();
  const log = options.log ?? (() => {});
  const standbyCount = options.standbys ?? 1;
  if (!Number.isInteger(standbyCount) || standbyCount < 0) {
    throw new Error(`standbys must be a non-negative integer, got ${standbyCount}`);
  }
  if (options.standbyPorts && options.standbyPorts.length < standbyCount) {
    throw new Error(`standbyPorts has ${options.standbyPorts.length} ports for ${standbyCount} standbys`);
  }
  if (options.synchronous && standbyCount === 0) {
    throw new Error("synchronous: true needs at least one standby");
  }

  const binaries = findPgBinaries();
  const user = pgUser();
  const ports = await allocatePorts(options.primaryPort, options.standbyPorts, standbyCount);

  let baseDir: string;
  let createdBaseDir: boolean;
  if (options.baseDir === undefined) {
    baseDir = await mkdtemp(path.join(os.tmpdir(), "autonomy-pg-"));
    createdBaseDir = true;
  } else {
    baseDir = path.resolve(options.baseDir);
    createdBaseDir = !existsSync(baseDir);
    mkdirSync(baseDir, { recursive: true });
  }
  // A base dir we created belongs to the postgres user; an existing one is
  // left as is (it must be traversable by that user).
  if (createdBaseDir) user.chown(baseDir);

  const cluster = new Cluster(baseDir, options.keepData ?? false, log);
  if (createdBaseDir) cluster.removeOnClose(baseDir);
  log(`pgcluster: PostgreSQL ${binaries.version} from ${binaries.bindir}, base dir ${baseDir}`);

  const newServer = (name: string, port: number): PgServer => {
    const server = new PgServer({ name, port, dir: path.join(baseDir, name), bindir: binaries.bindir, host: HOST, log });
    createServerDir(server);
    if (!createdBaseDir) cluster.removeOnClose(server.dir);
    return server;
  };

  try {
    const primary = newServer("primary", ports.primary);
    cluster.setPrimary(primary);
    log("pgcluster: initdb primary");
    await initPrimary(primary, binaries, options.settings);
    await primary.start();
    await createReplicationRole(primary);

    for (let i = 0; i < standbyCount; i++) {
      const name = `standby${i + 1}`;
      const standby = newServer(name, ports.standbys[i]!);
      cluster.standbys.push(standby);
      log(`pgcluster: pg_basebackup ${name}`);
      await initStandby(standby, primary, `${name}_slot`, binaries);
      await standby.start();
      await standby.waitForStreaming();
    }

    if (options.synchronous) await makeSynchronous(primary, cluster.standbys);

    log(
      `pgcluster: ready in ${Date.now() - started}ms — ` +
        [primary, ...cluster.standbys].map((s) => `${s.name} ${s.host}:${s.port}`).join(", "),
    );
    return cluster;
  } catch (err) {
    await cluster.close().catch(() => {});
    throw err;
  }
}

async function makeSynchronous(primary: PgServer, standbys: PgServer[]): Promise<void> {
  const names = standbys.map((s) => s.name).join(", ");
  await primary.query(`ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 (${names})'`);
  await primary.query("SELECT pg_reload_conf()");
  // Each walsender re-reads the setting on its own after the reload; wait
  // until all of them have (standby1 'sync', the others 'potential').
  await waitUntil(
    async () => {
      const rows = await primary.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_replication WHERE sync_state IN ('sync', 'potential')",
      );
      return rows[0]?.n === standbys.length;
    },
    { timeoutMs: 30_000, what: `every standby (${names}) to be listed as sync or potential in pg_stat_replication` },
  );
}

async function allocatePorts(
  primaryPort: number | undefined,
  standbyPorts: number[] | undefined,
  standbyCount: number,
): Promise<{ primary: number; standbys: number[] }> {
  // Explicit ports are reserved first so a kernel-chosen one cannot collide.
  const taken = new Set<number>();
  const explicit = [primaryPort, ...(standbyPorts ?? []).slice(0, standbyCount)];
  for (const port of explicit) {
    if (port === undefined) continue;
    if (taken.has(port)) throw new Error(`port ${port} is assigned to two servers`);
    taken.add(port);
  }
  const pick = async (wanted: number | undefined): Promise<number> => {
    if (wanted !== undefined) return wanted;
    // The kernel may hand back a port we already chose (it was released again).
    for (;;) {
      const port = await freePort(HOST);
      if (!taken.has(port)) {
        taken.add(port);
        return port;
      }
    }
  };
  const primary = await pick(primaryPort);
  const standbys: number[] = [];
  for (let i = 0; i < standbyCount; i++) standbys.push(await pick(standbyPorts?.[i]));
  return { primary, standbys };
}

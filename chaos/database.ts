// The PostgreSQL side under test: a primary and a synchronous standby with
// commit timestamps on, and the database faults. It tracks which server is
// the primary, so the workload is told where to write after a promotion.

import pg from "pg";
import { startPgCluster, type PgCluster, type PgServer } from "../pgcluster/index.js";

export class ChaosDatabase {
  private primaryServer: PgServer;
  private standbyServer: PgServer | undefined;
  /** The old primary after a promotion, returned on its old timeline. */
  zombie: PgServer | undefined;
  private pausedPid: number | undefined;

  private constructor(readonly cluster: PgCluster) {
    this.primaryServer = cluster.primary;
    this.standbyServer = cluster.standby;
  }

  static async start(log: (line: string) => void): Promise<ChaosDatabase> {
    const cluster = await startPgCluster({
      standbys: 1,
      synchronous: true,
      // I2 compares the commit order of fenced writes in the database itself.
      settings: { track_commit_timestamp: true },
      log,
    });
    return new ChaosDatabase(cluster);
  }

  /** Every server, in a fixed order (their proxies are listed in the agents' URLs in this order). */
  get servers(): PgServer[] {
    return [this.cluster.primary, ...this.cluster.standbys];
  }

  get primary(): PgServer {
    return this.primaryServer;
  }

  get standby(): PgServer | undefined {
    return this.standbyServer;
  }

  async restartPrimary(mode: "fast" | "immediate"): Promise<void> {
    await this.primaryServer.stop(mode);
    await this.primaryServer.start();
  }

  /** Whether the standby is the primary's synchronous standby right now. */
  async standbyIsSync(): Promise<boolean> {
    const rows = await this.primaryServer
      .query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_replication WHERE sync_state = 'sync'")
      .catch(() => [{ n: 0 }]);
    return (rows[0]?.n ?? 0) > 0;
  }

  /** SIGKILL the primary (a crash of its host) and promote the standby. Returns the names. */
  async crashAndPromote(): Promise<{ from: string; to: string }> {
    const standby = this.standbyServer;
    if (!standby) throw new Error("no standby left to promote");
    const old = this.primaryServer;
    await old.kill("SIGKILL");
    await standby.promote();
    this.primaryServer = standby;
    this.standbyServer = undefined;
    this.zombie = old;
    return { from: old.name, to: standby.name };
  }

  /**
   * The old primary comes back, writable on its old timeline. It still names
   * the promoted server as its synchronous standby, which would make every
   * commit there wait forever; a zombie that can commit is the dangerous one,
   * so that setting is reset.
   */
  async returnZombie(): Promise<void> {
    const zombie = this.zombie;
    if (!zombie || zombie.isRunning()) return;
    await zombie.start();
    await zombie.query("ALTER SYSTEM RESET synchronous_standby_names");
    await zombie.query("SELECT pg_reload_conf()");
  }

  /** Hold ACCESS EXCLUSIVE on the HA tables for ms: heartbeats, open_epoch and assert_epoch all wait. */
  async lockHaTables(ms: number): Promise<void> {
    const client = new pg.Client({ connectionString: this.primaryServer.url(), application_name: "chaos/lock-ha-tables", connectionTimeoutMillis: 5_000 });
    client.on("error", () => undefined);
    await client.connect();
    try {
      await client.query("SET lock_timeout = '3s'");
      await client.query("BEGIN");
      await client.query("LOCK TABLE leadership_state, leader_epochs IN ACCESS EXCLUSIVE MODE");
      await new Promise((resolve) => setTimeout(resolve, ms));
      await client.query("ROLLBACK");
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** SIGSTOP the primary's postmaster only: sessions already open keep working, new connections hang. */
  pausePostmaster(): void {
    const pid = this.primaryServer.pid();
    if (pid === undefined) throw new Error(`${this.primaryServer.name} is not running`);
    process.kill(pid, "SIGSTOP");
    this.pausedPid = pid;
  }

  resumePostmaster(): void {
    if (this.pausedPid === undefined) return;
    try {
      process.kill(this.pausedPid, "SIGCONT");
    } catch {
      // gone already
    }
    this.pausedPid = undefined;
  }

  async close(): Promise<void> {
    this.resumePostmaster();
    await this.cluster.close();
  }
}

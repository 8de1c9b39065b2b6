import type pg from "pg";
import { systemClock, type Clock } from "../../core/clock.js";
import { ErrorCode, HaError, toHaError } from "../../core/errors.js";
import { connectDatabase, type DatabaseTarget } from "../../db/connect.js";
import { LOCK_CLASS_ID, type SchemaName } from "../../db/identifiers.js";
import { LOCK_MATCH_SQL, closeEpoch, openEpoch } from "../../db/leadership.js";
import type { ServerStanding } from "../../core/authority.js";
import { fenceSupersededServer } from "../../db/authority.js";
import type { DatabaseAuthority, LockServer } from "../../db/database-authority.js";

export interface LockSessionOptions {
  readonly target: DatabaseTarget;
  readonly nodeId: string;
  readonly clusterId: string;
  readonly schema: SchemaName;
  readonly connectTimeoutMs: number;
  /** Cancels a statement of this session from another connection (pg_cancel_backend). */
  readonly cancel: (pid: number) => Promise<void>;
  /**
   * The session's lock_timeout: how long opening or closing an epoch (or a
   * heartbeat) may wait for leadership_state's row lock. Set once at connect,
   * so no statement on the path from lock grant to open term pays a round
   * trip for it; a wait on the advisory lock sets its own for that statement.
   */
  readonly statementLockTimeoutMs: number;
  /** Paces the repeated cancel of an aborted lock wait; the system clock when omitted. */
  readonly clock?: Clock;
  /** Judges each server before the session settles on it (a superseded primary is refused). */
  readonly authority?: DatabaseAuthority;
  /** Run open_epoch once at connect, rolled back (see warmUp); default true. A session that will never lead skips it. */
  readonly warmUp?: boolean;
}

/** What one heartbeat through the lock session confirmed. */
export interface HeartbeatResult {
  /** The session still holds the advisory lock. */
  readonly lockHeld: boolean;
  /** leadership_state still names us with our epoch (and its heartbeat_at was advanced). */
  readonly termCurrent: boolean;
  readonly heartbeatAt: Date | undefined;
}

/**
 * The dedicated, never-recycled connection that holds the leader lock. Its
 * application_name is the node id, so pg_stat_activity and pg_locks show who
 * holds the lock. Every statement checks that the backend pid is still the
 * one we locked with: behind a transaction-mode pooler consecutive statements
 * land on different backends and a session lock means nothing.
 */
export class LockSession {
  private dead: Error | undefined;

  private constructor(
    private readonly client: pg.Client,
    readonly pid: number,
    private readonly options: LockSessionOptions,
    /** The server this session is on, as read when it connected (with an authority to judge it). */
    readonly server: LockServer | undefined,
  ) {}

  static async open(options: LockSessionOptions): Promise<LockSession> {
    let session: LockSession | undefined;
    let server: LockServer | undefined;
    const client = await connectDatabase(
      options.target,
      {
        applicationName: options.nodeId,
        connectTimeoutMs: options.connectTimeoutMs,
        keepAlive: true,
        lockTimeoutMs: options.statementLockTimeoutMs,
        // open_epoch's statements are planned once (at the warm-up) and the
        // plans reused, rather than planned again for each of the first calls.
        settings: { plan_cache_mode: "force_generic_plan" },
        accept: options.authority?.accept((chosen) => (server = chosen)),
      },
      (err) => session?.markDead(err),
    );
    client.on("end", () => session?.markDead(new Error("lock session closed")));
    try {
      const first = await backendPid(client);
      const second = await backendPid(client);
      if (first !== second) throw pooled(first, second);
      session = new LockSession(client, first, options, server);
      if (options.warmUp !== false) await session.warmUp();
      return session;
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
  }

  /**
   * Runs open_epoch once for a cluster id no real cluster can have (':' is
   * not allowed in one), inside a transaction that is rolled back: nothing
   * is written and nothing is locked afterwards. A fresh backend's first
   * open_epoch costs several times a warm one (plpgsql compiles the function,
   * plans each statement, and loads the catalog entries of every table it
   * touches), and that first call is the one between the lock's grant and
   * Write-Ready when the leader fails. Best effort: any error is ignored.
   */
  private async warmUp(): Promise<void> {
    const cluster = this.client.escapeLiteral(WARM_UP_CLUSTER_ID);
    try {
      const [, locked] = await this.queryAll(`BEGIN; SELECT pg_try_advisory_xact_lock(${LOCK_CLASS_ID}, hashtext(${cluster})) AS locked`);
      if ((locked?.rows[0] as { locked?: boolean } | undefined)?.locked) {
        await this.queryAll(`SELECT * FROM ${this.options.schema.q("open_epoch")}(${cluster}, ${this.client.escapeLiteral(this.options.nodeId)}, 0)`);
      }
    } catch {
      // A standby, a fenced server, a schema not yet migrated: the first real open_epoch is just slower.
    } finally {
      if (this.alive) await this.queryAll("ROLLBACK").catch(() => undefined);
    }
  }

  /** False once the connection failed or was closed; a dead session is never reused. */
  get alive(): boolean {
    return this.dead === undefined;
  }

  private markDead(err: Error): void {
    this.dead ??= err;
  }

  private async query<R extends pg.QueryResultRow>(sql: string, params: unknown[]): Promise<R[]> {
    if (this.dead) throw new HaError(ErrorCode.Unavailable, `lock session is gone: ${this.dead.message}`);
    try {
      return (await this.client.query<R>(sql, params)).rows;
    } catch (err) {
      throw this.failed(err);
    }
  }

  /** The error to throw for a failed statement; a connection-level failure ends the session. */
  private failed(err: unknown): HaError {
    const e = toHaError(err, "lock session");
    // 57014 (query_canceled) ends one statement, not the session.
    if (e.code === ErrorCode.Unavailable && (err as { code?: string }).code !== "57014") this.markDead(e);
    return e;
  }

  /** A simple query of several statements (no parameters): one round trip, one implicit transaction. */
  private async queryAll(sql: string): Promise<pg.QueryResult[]> {
    if (this.dead) throw new HaError(ErrorCode.Unavailable, `lock session is gone: ${this.dead.message}`);
    try {
      const r = (await this.client.query(sql)) as unknown as pg.QueryResult | pg.QueryResult[];
      return Array.isArray(r) ? r : [r];
    } catch (err) {
      throw this.failed(err);
    }
  }

  private checkPid(pid: number): void {
    if (pid !== this.pid) {
      const err = pooled(this.pid, pid);
      this.markDead(err);
      throw err;
    }
  }

  /** pg_try_advisory_lock on this session. */
  async tryLock(): Promise<boolean> {
    const [row] = await this.query<{ locked: boolean; pid: number }>(
      "SELECT pg_try_advisory_lock($1, hashtext($2)) AS locked, pg_backend_pid() AS pid",
      [LOCK_CLASS_ID, this.options.clusterId],
    );
    this.checkPid(row!.pid);
    return row!.locked;
  }

  /**
   * Waits on the lock up to `ms`, so this session is granted the lock the
   * moment the holder's session ends. Aborting cancels the wait.
   *
   * One round trip: SET LOCAL and the wait go in one simple query, which
   * PostgreSQL runs as one implicit transaction, so the wait's lock_timeout
   * ends with it and the session's own is back before open_epoch runs.
   * The extended protocol takes a single statement, hence literals (a
   * number and an escaped string).
   */
  async waitLock(ms: number, signal: AbortSignal): Promise<boolean> {
    if (signal.aborted) return false;
    let waiting = true;
    // The cancel only hits a backend that is waiting on the lock, so an abort
    // that lands just before the wait begins is repeated until the wait ends.
    const onAbort = () =>
      void (async () => {
        while (waiting) {
          await this.options.cancel(this.pid).catch(() => undefined);
          if (waiting) await (this.options.clock ?? systemClock).sleep(25);
        }
      })();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      const timeout = `${Math.max(1, Math.round(ms))}ms`;
      const results = await this.queryAll(
        `SET LOCAL lock_timeout = '${timeout}'; SELECT pg_advisory_lock(${LOCK_CLASS_ID}, hashtext(${this.client.escapeLiteral(this.options.clusterId)})), pg_backend_pid() AS pid`,
      );
      const pid = (results.at(-1)?.rows[0] as { pid: number } | undefined)?.pid;
      this.checkPid(pid ?? -1);
      return true;
    } catch (err) {
      const cause = (err as HaError).cause as { code?: string } | undefined;
      // 55P03 lock_not_available: the wait timed out; 57014 query_canceled: aborted.
      if (cause?.code === "55P03" || cause?.code === "57014") return false;
      throw err;
    } finally {
      waiting = false;
      signal.removeEventListener("abort", onAbort);
    }
  }

  /**
   * Opens the next epoch; the database checks that this session holds the
   * lock. Bounded by a lock timeout: an application transaction that sits on
   * an assert_epoch() of the old term must not keep the new term from opening
   * forever (set idle_in_transaction_session_timeout for such transactions).
   */
  async openEpoch(floor: number): Promise<{ epoch: number; acquiredAt: Date; superseded: number[] }> {
    return this.bounded("open epoch", () => openEpoch(this.client, this.options.schema, this.options.clusterId, this.options.nodeId, floor));
  }

  /** Runs `work` (bounded by the session's lock_timeout), naming what timed out. */
  private async bounded<T>(what: string, work: () => Promise<T>): Promise<T> {
    if (this.dead) throw new HaError(ErrorCode.Unavailable, `lock session is gone: ${this.dead.message}`);
    try {
      return await work();
    } catch (err) {
      if ((err as { code?: string }).code === "55P03") {
        throw new HaError(ErrorCode.Unavailable, `${what}: leadership_state stayed locked for ${this.options.statementLockTimeoutMs}ms, most likely by an application transaction still open on an older epoch`, { cause: err });
      }
      throw toHaError(err, what);
    }
  }

  /** Confirms the lock and the term in one round trip on the lock's own session. */
  async heartbeat(epoch: number): Promise<HeartbeatResult> {
    const s = this.options.schema;
    // The heartbeat's commit does not wait for the WAL flush (nor a sync
    // standby): heartbeat_at needs no durability, and a slow disk must not eat
    // the lease of a healthy leader. Terms open and close with full durability.
    const [row] = await this.query<{ pid: number; held: boolean; heartbeat_at: Date | null }>(
      `WITH nosync AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true)),
            hb AS (
         UPDATE ${s.q("leadership_state")} SET heartbeat_at = now()
          WHERE cluster_id = $1 AND holder_id = $2 AND epoch = $3
         RETURNING heartbeat_at)
       SELECT pg_backend_pid() AS pid, (SELECT heartbeat_at FROM hb) AS heartbeat_at, (SELECT count(*) FROM nosync) AS nosync,
              EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = pg_backend_pid() AND l.granted AND ${LOCK_MATCH_SQL}) AS held`,
      [this.options.clusterId, this.options.nodeId, epoch],
    );
    this.checkPid(row!.pid);
    return { lockHeld: row!.held, termCurrent: row!.heartbeat_at !== null, heartbeatAt: row!.heartbeat_at ?? undefined };
  }

  /** Closes our epoch (conditional on holder and epoch) and releases the lock. */
  async resign(epoch: number): Promise<Date> {
    const at = await this.bounded("resign", () =>
      closeEpoch(this.client, this.options.schema, this.options.clusterId, this.options.nodeId, epoch, "resigned"),
    );
    await this.unlock();
    return at;
  }

  /**
   * Fences this session's server as superseded by `by` (see fence_superseded):
   * every term there ends and assert_epoch refuses every epoch. The server
   * refuses when `by` is not ahead of it. Returns whether the fence is new.
   */
  async fenceSuperseded(by: ServerStanding, reason: string): Promise<boolean> {
    return this.bounded("fence superseded server", () => fenceSupersededServer(this.client, this.options.schema, by, reason, this.options.nodeId));
  }

  async unlock(): Promise<void> {
    await this.query("SELECT pg_advisory_unlock_all()", []);
  }

  /** Ends the connection; Postgres releases the lock with the session. */
  async close(): Promise<void> {
    this.markDead(new Error("lock session closed"));
    await this.client.end().catch(() => undefined);
  }
}

/** The cluster id warmUp opens a term for, rolled back; never a valid --cluster-id. */
const WARM_UP_CLUSTER_ID = "autonomy:warm-up";

async function backendPid(client: pg.Client): Promise<number> {
  const r = await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
  return r.rows[0]!.pid;
}

function pooled(first: number, second: number): HaError {
  return new HaError(
    ErrorCode.FailedPrecondition,
    `the lock session's backend changed between statements (pid ${first}, then ${second}): --database-url goes through a ` +
      "transaction-mode pooler, where a session advisory lock means nothing; point it at PostgreSQL directly or at a session-mode pool",
    { retryable: false },
  );
}

import pg from "pg";
import type { Clock } from "../../core/clock.js";
import { describeError } from "../../core/errors.js";
import type { Logger } from "../../core/log.js";
import type { SchemaName } from "../../db/identifiers.js";
import { closeEpoch, terminateLockHolder } from "../../db/leadership.js";
import { clearStaleHolder, readLockDatabaseSnapshot, readLockWaiters, terminateIntruder } from "../../db/lock-oversight.js";
import type { DatabaseTruth } from "../view/cluster-view.js";
import type { PrimaryPool } from "../../db/primary-pool.js";

/**
 * Reads the truth from the lock database: who holds the advisory lock
 * (pg_locks + pg_stat_activity), leadership_state, unclosed epochs, and the
 * server's identity. Reads are coalesced (one in flight, at most one queued),
 * so asking for a read on every interesting report costs nothing extra.
 * Changes are timed by our monotonic clock when we see them, never by the
 * database's timestamps (safe against clock skew).
 */
export class DatabaseTruthPoller {
  private latestTruth: DatabaseTruth | undefined;
  private inFlight: Promise<DatabaseTruth> | undefined;
  private queued: Promise<DatabaseTruth> | undefined;
  private readonly listeners = new Set<(t: DatabaseTruth) => void>();

  constructor(
    private readonly pool: PrimaryPool,
    private readonly schema: SchemaName,
    private readonly clusterId: string,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  latest(): DatabaseTruth | undefined {
    return this.latestTruth;
  }

  onRead(listener: (t: DatabaseTruth) => void): void {
    this.listeners.add(listener);
  }

  /**
   * Reads every `intervalMs` (after the previous read ended) until `signal`
   * aborts; resolves then. `offsetMs` delays the first read, so that the
   * clusters of one coordinator poll spread over the interval, not all at once.
   */
  async run(intervalMs: number, signal: AbortSignal, offsetMs = 0): Promise<void> {
    if (offsetMs > 0) await this.clock.sleep(offsetMs, signal).catch(() => undefined);
    while (!signal.aborted) {
      // A failed read is a reading (unreachable), never an exception.
      await this.refresh();
      await this.clock.sleep(intervalMs, signal).catch(() => undefined);
    }
  }

  /** A read that starts after this call (coalesced with other callers). */
  refresh(): Promise<DatabaseTruth> {
    if (!this.inFlight) return this.begin();
    this.queued ??= this.inFlight.then(() => {
      this.queued = undefined;
      return this.begin();
    });
    return this.queued;
  }

  private begin(): Promise<DatabaseTruth> {
    const p = this.read().finally(() => {
      if (this.inFlight === p) this.inFlight = undefined;
    });
    this.inFlight = p;
    return p;
  }

  private async read(): Promise<DatabaseTruth> {
    const startedMs = this.clock.monotonicMs();
    const prev = this.latestTruth;
    let truth: DatabaseTruth;
    try {
      const client = await this.pool.connect();
      // A checked-out client has no listener of the pool's: without ours, a
      // server that dies mid-read (pg_ctl stop -m immediate) emits an
      // unhandled 'error' and ends the process. The failed query rejects too,
      // so the read below reports the database unreachable.
      const onError = (err: Error) => this.log.debug({ err: err.message }, "lock database connection failed during a read");
      client.on("error", onError);
      try {
        const { leadership, unclosedEpochs, lockHolders, identity } = await readLockDatabaseSnapshot(client, this.schema, this.clusterId);
        const holdersKey = lockHolders.map((h) => `${h.pid}/${h.applicationName}`).sort().join(",");
        const prevKey = prev?.reachable ? prev.lockHolders.map((h) => `${h.pid}/${h.applicationName}`).sort().join(",") : undefined;
        const beat = leadership.heartbeatAt?.getTime();
        truth = {
          reachable: true,
          error: "",
          readAtMs: startedMs,
          identity,
          leadership,
          lockHolders,
          unclosedEpochs,
          heartbeatAdvancedAtMs: prev && prev.leadership.heartbeatAt?.getTime() === beat ? prev.heartbeatAdvancedAtMs : startedMs,
          lockHoldersSinceMs: prev && prevKey === holdersKey ? prev.lockHoldersSinceMs : startedMs,
          epochChangedAtMs: prev && prev.leadership.epoch === leadership.epoch ? prev.epochChangedAtMs : startedMs,
        };
      } catch (err) {
        // Destroyed, not returned: a late 'error' from it must still find a listener.
        client.release(err instanceof Error ? err : true);
        throw err;
      }
      client.off("error", onError);
      client.release();
    } catch (err) {
      if (prev?.reachable !== false) this.log.warn({ err: describeError(err) }, "lock database unreachable");
      truth = {
        reachable: false,
        error: describeError(err),
        readAtMs: startedMs,
        identity: prev?.identity,
        leadership: prev?.leadership ?? { holderId: undefined, epoch: 0, acquiredAt: undefined, heartbeatAt: undefined },
        lockHolders: prev?.lockHolders ?? [],
        unclosedEpochs: prev?.unclosedEpochs ?? [],
        heartbeatAdvancedAtMs: prev?.heartbeatAdvancedAtMs ?? startedMs,
        lockHoldersSinceMs: prev?.lockHoldersSinceMs ?? startedMs,
        epochChangedAtMs: prev?.epochChangedAtMs ?? startedMs,
      };
    }
    if (prev && !prev.reachable && truth.reachable) this.log.info("lock database reachable again");
    // A slower read must not overwrite a newer one.
    if (!this.latestTruth || this.latestTruth.readAtMs <= truth.readAtMs) this.latestTruth = truth;
    for (const l of this.listeners) l(truth);
    return truth;
  }

  /** Sessions queued on the leader lock (pg_advisory_lock waiting), by application_name. */
  lockWaiters(): Promise<string[]> {
    return readLockWaiters(this.pool, this.clusterId);
  }

  /**
   * Ends the lock session of `nodeId`: only a session that holds our lock
   * under that application_name (and that pid, when given), so a reused pid
   * or another client is never hit. Returns the pids terminated.
   */
  terminateLockSession(nodeId: string, pid?: number): Promise<number[]> {
    return terminateLockHolder(this.pool, this.clusterId, nodeId, pid);
  }

  /**
   * Ends exactly the session `pid`, and only while, in the same statement,
   * it still holds our lock with the application_name and backend start we
   * judged (so a pid reused by another backend since is never hit). Returns
   * whether it was ended.
   */
  terminateIntruder(pid: number, applicationName: string, backendStart: Date | undefined): Promise<boolean> {
    return terminateIntruder(this.pool, this.clusterId, pid, applicationName, backendStart);
  }

  /** Clears leadership_state.holder_id while it still names `staleHolder`; whether it did. */
  clearStaleHolder(staleHolder: string): Promise<boolean> {
    return clearStaleHolder(this.pool, this.schema, this.clusterId, staleHolder);
  }

  /** Closes `epoch` of `holderId` as superseded, if that holder still holds it open. */
  async supersedeEpoch(holderId: string, epoch: number): Promise<void> {
    await closeEpoch(this.pool, this.schema, this.clusterId, holderId, epoch, "superseded");
  }
}

/** A pool for the coordinator's own reads: small, named, and bounded in time. */
export function createTruthPool(databaseUrl: string, log: Logger): pg.Pool {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: 4,
    application_name: "autonomy-coordinator",
    connectionTimeoutMillis: 3_000,
    statement_timeout: 5_000,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
  });
  pool.on("error", (err) => log.debug({ err: err.message }, "idle database connection failed"));
  return pool;
}

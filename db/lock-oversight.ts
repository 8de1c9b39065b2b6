import type { SchemaName } from "./identifiers.js";
import {
  LOCK_MATCH_SQL,
  readDatabaseIdentity,
  readEpochs,
  readLeadership,
  readLockHolders,
  type DatabaseIdentity,
  type EpochRow,
  type LeadershipRow,
  type LockHolderRow,
} from "./leadership.js";
import type { Queryable } from "./side-connection.js";

/*
 * The coordinator's statements on the lock database: what it reads to judge
 * the cluster, and the few interventions it makes (ending a lock session,
 * clearing a stale holder). Every one is conditional on what it checks in the
 * same statement, so acting on a stale reading can never hit the wrong session
 * or overwrite a newer record.
 */

/** One consistent reading of the lock database for a cluster. */
export interface LockDatabaseSnapshot {
  readonly leadership: LeadershipRow;
  readonly unclosedEpochs: EpochRow[];
  readonly lockHolders: LockHolderRow[];
  readonly identity: DatabaseIdentity;
}

/**
 * Reads leadership_state and the unclosed epochs in one snapshot (they are
 * compared with each other), then the lock holders and the server's identity.
 * `db` must be one session (a checked-out client), not a pool.
 */
export async function readLockDatabaseSnapshot(db: Queryable, s: SchemaName, clusterId: string): Promise<LockDatabaseSnapshot> {
  await db.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  let leadership: LeadershipRow;
  let unclosedEpochs: EpochRow[];
  try {
    leadership = await readLeadership(db, s, clusterId);
    unclosedEpochs = await readEpochs(db, s, clusterId, { onlyUnclosed: true, limit: 100 });
    await db.query("COMMIT");
  } catch (err) {
    await db.query("ROLLBACK").catch(() => undefined);
    throw err;
  }
  const lockHolders = await readLockHolders(db, clusterId);
  const identity = await readDatabaseIdentity(db);
  return { leadership, unclosedEpochs, lockHolders, identity };
}

/** Sessions queued on the leader lock (pg_advisory_lock waiting), by application_name. */
export async function readLockWaiters(db: Queryable, clusterId: string): Promise<string[]> {
  const r = await db.query<{ application_name: string }>(
    `SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE NOT l.granted AND ${LOCK_MATCH_SQL}`,
    [clusterId],
  );
  return r.rows.map((x) => x.application_name);
}

/**
 * Ends exactly the session `pid`, and only while, in the same statement, it
 * still holds the cluster's lock with the application_name and backend start
 * that were judged (so a pid reused by another backend since is never hit).
 * Returns whether it was ended.
 */
export async function terminateIntruder(db: Queryable, clusterId: string, pid: number, applicationName: string, backendStart: Date | undefined): Promise<boolean> {
  // MATERIALIZED: pg_terminate_backend must only ever see rows that passed every filter.
  const r = await db.query<{ pid: number; ok: boolean }>(
    `WITH target AS MATERIALIZED (
       SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.granted AND ${LOCK_MATCH_SQL} AND l.pid = $2 AND a.application_name = $3
          -- The Date we hold has millisecond precision; backend_start has microseconds.
          AND ($4::timestamptz IS NULL OR abs(extract(epoch FROM a.backend_start - $4::timestamptz)) < 0.001)
          AND l.pid <> pg_backend_pid())
     SELECT pid, pg_terminate_backend(pid) AS ok FROM target`,
    [clusterId, pid, applicationName, backendStart ?? null],
  );
  return r.rows.some((x) => x.ok);
}

/**
 * Seed 002's force-resign: clears leadership_state.holder_id only while it
 * still names `staleHolder`, so it can never overwrite the record of a leader
 * that took over meanwhile. Returns whether it cleared it.
 */
export async function clearStaleHolder(db: Queryable, s: SchemaName, clusterId: string, staleHolder: string): Promise<boolean> {
  const r = await db.query(`UPDATE ${s.q("leadership_state")} SET holder_id = NULL WHERE cluster_id = $1 AND holder_id = $2`, [clusterId, staleHolder]);
  return (r.rowCount ?? 0) > 0;
}

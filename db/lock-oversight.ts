import type { SchemaName } from "./identifiers.js";
import {
  LOCK_MATCH_SQL,
  TIMELINE_SQL,
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
 * Reads leadership_state, the unclosed epochs, the lock holders and the
 * server's identity in one statement: one round trip, and one snapshot for
 * the two tables that are compared with each other. A coordinator serving
 * many clusters reads this for each every poll interval.
 */
export async function readLockDatabaseSnapshot(db: Queryable, s: SchemaName, clusterId: string): Promise<LockDatabaseSnapshot> {
  const r = await db.query<{
    holder_id: string | null;
    epoch: string | null;
    acquired_at: Date | null;
    heartbeat_at: Date | null;
    unclosed: { epoch: string; holder_id: string; acquired_at: string; end_reason: string | null }[];
    holders: { pid: number; application_name: string; backend_start: string | null; client_addr: string | null }[];
    system_identifier: string;
    timeline_id: number;
    in_recovery: boolean;
  }>(
    `SELECT ls.holder_id, ls.epoch, ls.acquired_at, ls.heartbeat_at,
            coalesce((SELECT json_agg(json_build_object('epoch', e.epoch::text, 'holder_id', e.holder_id, 'acquired_at', e.acquired_at, 'end_reason', e.end_reason) ORDER BY e.epoch DESC)
                        FROM (SELECT * FROM ${s.q("leader_epochs")} WHERE cluster_id = $1 AND resigned_at IS NULL ORDER BY epoch DESC LIMIT 100) e), '[]') AS unclosed,
            coalesce((SELECT json_agg(json_build_object('pid', l.pid, 'application_name', a.application_name, 'backend_start', a.backend_start, 'client_addr', host(a.client_addr)))
                        FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.granted AND ${LOCK_MATCH_SQL}), '[]') AS holders,
            sys.system_identifier::text AS system_identifier, pg_is_in_recovery() AS in_recovery, ${TIMELINE_SQL} AS timeline_id
       FROM pg_control_system() sys CROSS JOIN pg_control_checkpoint() c
       LEFT JOIN ${s.q("leadership_state")} ls ON ls.cluster_id = $1`,
    [clusterId],
  );
  const row = r.rows[0]!;
  return {
    leadership: {
      holderId: row.holder_id ?? undefined,
      epoch: Number(row.epoch ?? 0),
      acquiredAt: row.acquired_at ?? undefined,
      heartbeatAt: row.heartbeat_at ?? undefined,
    },
    unclosedEpochs: row.unclosed.map((e) => ({ epoch: Number(e.epoch), holderId: e.holder_id, acquiredAt: new Date(e.acquired_at), resignedAt: undefined, endReason: e.end_reason ?? undefined })),
    lockHolders: row.holders.map((h) => ({ pid: h.pid, applicationName: h.application_name, backendStart: h.backend_start ? new Date(h.backend_start) : undefined, clientAddr: h.client_addr ?? undefined })),
    identity: { systemIdentifier: row.system_identifier, timeline: row.timeline_id, inRecovery: row.in_recovery },
  };
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

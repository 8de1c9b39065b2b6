import type pg from "pg";
import { LOCK_CLASS_ID, type SchemaName } from "./identifiers.js";
import type { Queryable } from "./side-connection.js";

/** leadership_state for one cluster, as read from the database. */
export interface LeadershipRow {
  readonly holderId: string | undefined;
  readonly epoch: number;
  readonly acquiredAt: Date | undefined;
  readonly heartbeatAt: Date | undefined;
}

/** One session holding the leader lock, per pg_locks + pg_stat_activity. */
export interface LockHolderRow {
  readonly pid: number;
  /** The holder's application_name: agents set it to their node id. */
  readonly applicationName: string;
  readonly backendStart: Date | undefined;
  readonly clientAddr: string | undefined;
}

/** One row of leader_epochs. */
export interface EpochRow {
  readonly epoch: number;
  readonly holderId: string;
  readonly acquiredAt: Date;
  readonly resignedAt: Date | undefined;
  readonly endReason: string | undefined;
}

/** The largest epoch a PostgreSQL bigint holds; no epoch is ever above it. */
export const MAX_EPOCH = 2n ** 63n - 1n;

/**
 * How far above the highest epoch confirmed in the lock database any epoch we
 * are told about may be. A term opens one epoch, and a database failover that
 * lost its newest rows loses a few terms at most, so a real epoch is never far
 * above what the database holds; a value beyond this is forged or corrupt, and
 * taking it as a floor would push every later term there (one forged 2^53-1
 * once made every later term unusable).
 */
export const MAX_EPOCH_JUMP = 1000;

/**
 * The epoch gate: a transaction-scoped advisory lock per cluster, shared by
 * assert_epoch and exclusive for open_epoch/close_epoch (see migration 4). Its
 * classid ("AHAG") differs from LOCK_CLASS_ID, so LOCK_MATCH_SQL never matches it.
 */
export const EPOCH_GATE_CLASS_ID = 0x41484147;

/**
 * The channel on which leadership_state announces a new epoch (a new term), at
 * commit (migration 8). A notice is a hint to read leadership_state again,
 * never a value to act on: any session of the database may NOTIFY.
 */
export const TERM_CHANNEL = "autonomy_ha_term";

/** Whether a TERM_CHANNEL payload is about this schema's cluster; anything unreadable is not. */
export function isTermNoticeFor(payload: string | undefined, schema: SchemaName, clusterId: string): boolean {
  let notice: unknown;
  try {
    notice = JSON.parse(payload ?? "");
  } catch {
    return false;
  }
  const n = notice as { schema?: unknown; cluster_id?: unknown } | null;
  return typeof n === "object" && n !== null && n.schema === schema.name && n.cluster_id === clusterId;
}

/** SQL that matches our advisory lock for the cluster id in $1 in pg_locks (alias l). */
export const LOCK_MATCH_SQL = `l.locktype = 'advisory' AND l.classid = ${LOCK_CLASS_ID}::oid
  AND l.objid::bigint = (hashtext($1)::bigint & 4294967295) AND l.objsubid = 2
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`;

export async function readLeadership(db: Queryable, s: SchemaName, clusterId: string): Promise<LeadershipRow> {
  const r = await db.query<{ holder_id: string | null; epoch: string; acquired_at: Date | null; heartbeat_at: Date | null }>(
    `SELECT holder_id, epoch, acquired_at, heartbeat_at FROM ${s.q("leadership_state")} WHERE cluster_id = $1`,
    [clusterId],
  );
  const row = r.rows[0];
  return {
    holderId: row?.holder_id ?? undefined,
    epoch: Number(row?.epoch ?? 0),
    acquiredAt: row?.acquired_at ?? undefined,
    heartbeatAt: row?.heartbeat_at ?? undefined,
  };
}

export async function readLockHolders(db: Queryable, clusterId: string): Promise<LockHolderRow[]> {
  const r = await db.query<{ pid: number; application_name: string; backend_start: Date | null; client_addr: string | null }>(
    `SELECT l.pid, a.application_name, a.backend_start, host(a.client_addr) AS client_addr
       FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.granted AND ${LOCK_MATCH_SQL}`,
    [clusterId],
  );
  return r.rows.map((row) => ({
    pid: row.pid,
    applicationName: row.application_name,
    backendStart: row.backend_start ?? undefined,
    clientAddr: row.client_addr ?? undefined,
  }));
}

interface EpochRecord {
  epoch: string;
  holder_id: string;
  acquired_at: Date;
  resigned_at: Date | null;
  end_reason: string | null;
}

const epochRow = (row: EpochRecord): EpochRow => ({
  epoch: Number(row.epoch),
  holderId: row.holder_id,
  acquiredAt: row.acquired_at,
  resignedAt: row.resigned_at ?? undefined,
  endReason: row.end_reason ?? undefined,
});

export async function readEpochs(
  db: Queryable,
  s: SchemaName,
  clusterId: string,
  options: { onlyUnclosed?: boolean; limit?: number } = {},
): Promise<EpochRow[]> {
  const r = await db.query<EpochRecord>(
    `SELECT epoch, holder_id, acquired_at, resigned_at, end_reason FROM ${s.q("leader_epochs")}
      WHERE cluster_id = $1 ${options.onlyUnclosed ? "AND resigned_at IS NULL" : ""}
      ORDER BY epoch DESC LIMIT $2`,
    [clusterId, options.limit ?? 1000],
  );
  return r.rows.map(epochRow);
}

/** The terms above `epoch`, oldest first (at most `limit`). */
export async function readEpochsAbove(db: Queryable, s: SchemaName, clusterId: string, epoch: number, limit = 100): Promise<EpochRow[]> {
  const r = await db.query<EpochRecord>(
    `SELECT epoch, holder_id, acquired_at, resigned_at, end_reason FROM ${s.q("leader_epochs")}
      WHERE cluster_id = $1 AND epoch > $2 ORDER BY epoch LIMIT $3`,
    [clusterId, epoch, limit],
  );
  return r.rows.map(epochRow);
}

/** Opens the next epoch on the lock's own session (see open_epoch in migrations.ts). */
export async function openEpoch(
  lockSession: pg.ClientBase,
  s: SchemaName,
  clusterId: string,
  holderId: string,
  floor: number,
): Promise<{ epoch: number; acquiredAt: Date; superseded: number[] }> {
  const r = await lockSession.query<{ epoch: string; acquired_at: Date; superseded: string[] }>(
    `SELECT epoch, acquired_at, superseded FROM ${s.q("open_epoch")}($1, $2, $3)`,
    [clusterId, holderId, floor],
  );
  const row = r.rows[0]!;
  return { epoch: Number(row.epoch), acquiredAt: row.acquired_at, superseded: row.superseded.map(Number) };
}

/**
 * Closes `epoch` if `holderId` still holds it (conditional, so it is safe to
 * call for a stale node). Returns the close time.
 */
export async function closeEpoch(
  db: Queryable,
  s: SchemaName,
  clusterId: string,
  holderId: string,
  epoch: number,
  reason: "resigned" | "superseded",
): Promise<Date> {
  const r = await db.query<{ at: Date }>(`SELECT ${s.q("close_epoch")}($1, $2, $3, $4) AS at`, [clusterId, holderId, epoch, reason]);
  return r.rows[0]!.at;
}

/** What identifies a PostgreSQL server and whether it accepts writes. */
export interface DatabaseIdentity {
  readonly systemIdentifier: string;
  readonly timeline: number;
  readonly inRecovery: boolean;
}

/**
 * The server's current timeline, for a query over `pg_control_checkpoint() c`.
 * On a primary the current WAL file names the timeline at once; the
 * checkpoint's timeline lags a promotion until the next checkpoint. The one
 * spelling of it: the agent's probes and the coordinator both use this.
 */
export const TIMELINE_SQL = `CASE WHEN pg_is_in_recovery() THEN c.timeline_id
       ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END`;

export async function readDatabaseIdentity(db: Queryable): Promise<DatabaseIdentity> {
  const r = await db.query<{ system_identifier: string; timeline_id: number; in_recovery: boolean }>(
    `SELECT s.system_identifier::text AS system_identifier, pg_is_in_recovery() AS in_recovery, ${TIMELINE_SQL} AS timeline_id
       FROM pg_control_system() s, pg_control_checkpoint() c`,
  );
  const row = r.rows[0]!;
  return { systemIdentifier: row.system_identifier, timeline: row.timeline_id, inRecovery: row.in_recovery };
}

/**
 * Ends the lock session of `holder` (the application_name agents give their
 * lock session), only while it still holds the cluster's lock, and only the
 * session `pid` when given, so a pid reused since it was read is never hit.
 * Returns the pids ended.
 */
export async function terminateLockHolder(db: Queryable, clusterId: string, holder: string, pid?: number): Promise<number[]> {
  // MATERIALIZED: the planner may evaluate WHERE predicates in any order, so
  // pg_terminate_backend must only ever see rows that passed every filter.
  const r = await db.query<{ pid: number; ok: boolean }>(
    `WITH target AS MATERIALIZED (
       SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.granted AND ${LOCK_MATCH_SQL} AND a.application_name = $2
          AND ($3::int IS NULL OR l.pid = $3) AND l.pid <> pg_backend_pid())
     SELECT pid, pg_terminate_backend(pid) AS ok FROM target`,
    [clusterId, holder, pid ?? null],
  );
  return r.rows.filter((x) => x.ok).map((x) => x.pid);
}

/**
 * Cancels `pid`'s statement only while it waits on the leader lock: never a
 * statement after the wait was granted, nor open_epoch waiting on the epoch gate.
 */
export async function cancelLockWait(db: Queryable, pid: number): Promise<void> {
  await db.query(
    `SELECT pg_cancel_backend(a.pid) FROM pg_stat_activity a
      WHERE a.pid = $1 AND a.wait_event_type = 'Lock' AND a.wait_event = 'advisory'
        AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND NOT l.granted AND l.locktype = 'advisory'
                       AND l.classid = ${LOCK_CLASS_ID}::oid AND l.objsubid = 2)`,
    [pid],
  );
}

/** What the lock database itself confirms about a cluster's epochs. */
export interface ConfirmedEpoch {
  /** The server's system identifier: standbys share it, a fresh initdb does not. */
  readonly systemIdentifier: string;
  /** epoch_floor.floor for this cluster and server (0 without a row). */
  readonly storedFloor: number;
  /** The highest of the stored floor, leadership_state.epoch and every leader_epochs row. */
  readonly confirmed: number;
}

export async function readConfirmedEpoch(db: Queryable, s: SchemaName, clusterId: string): Promise<ConfirmedEpoch> {
  const r = await db.query<{ system_identifier: string; stored: string; confirmed: string }>(
    `WITH id AS (SELECT system_identifier::text AS sysid FROM pg_control_system()),
          stored AS (SELECT coalesce(max(f.floor), 0) AS v FROM ${s.q("epoch_floor")} f, id
                      WHERE f.cluster_id = $1 AND f.system_identifier = id.sysid)
     SELECT id.sysid AS system_identifier, stored.v AS stored,
            greatest(stored.v,
                     (SELECT coalesce(max(epoch), 0) FROM ${s.q("leadership_state")} WHERE cluster_id = $1),
                     (SELECT coalesce(max(epoch), 0) FROM ${s.q("leader_epochs")} WHERE cluster_id = $1)) AS confirmed
       FROM id, stored`,
    [clusterId],
  );
  const row = r.rows[0]!;
  return { systemIdentifier: row.system_identifier, storedFloor: Number(row.stored), confirmed: Number(row.confirmed) };
}

/**
 * Raises epoch_floor for this cluster to `floor` (never lowers it), only on
 * the server whose system identifier is `systemIdentifier` and only within
 * MAX_EPOCH_JUMP of what that server confirms itself. Returns the stored floor
 * afterwards, or undefined when nothing was written (another server, or out of bounds).
 */
export async function raiseEpochFloor(
  db: Queryable,
  s: SchemaName,
  clusterId: string,
  systemIdentifier: string,
  floor: number,
): Promise<number | undefined> {
  const r = await db.query<{ floor: string }>(
    `WITH id AS (SELECT system_identifier::text AS sysid FROM pg_control_system()),
          confirmed AS (
            SELECT greatest(
              (SELECT coalesce(max(f.floor), 0) FROM ${s.q("epoch_floor")} f, id WHERE f.cluster_id = $1 AND f.system_identifier = id.sysid),
              (SELECT coalesce(max(epoch), 0) FROM ${s.q("leadership_state")} WHERE cluster_id = $1),
              (SELECT coalesce(max(epoch), 0) FROM ${s.q("leader_epochs")} WHERE cluster_id = $1)) AS v)
     INSERT INTO ${s.q("epoch_floor")} AS f (cluster_id, system_identifier, floor, updated_at)
     SELECT $1, id.sysid, $3::bigint, now() FROM id, confirmed
      WHERE id.sysid = $2 AND $3::bigint <= confirmed.v + ${MAX_EPOCH_JUMP}
     ON CONFLICT (cluster_id, system_identifier) DO UPDATE
        SET floor = greatest(f.floor, excluded.floor), updated_at = now()
     RETURNING f.floor`,
    [clusterId, systemIdentifier, floor],
  );
  const row = r.rows[0];
  return row ? Number(row.floor) : undefined;
}

import { COORDINATOR_LOCK_CLASS_ID, type SchemaName } from "./identifiers.js";
import type { Queryable } from "./side-connection.js";

/** The active coordinator as the lock database records it (migration 7). */
export interface CoordinatorTerm {
  readonly term: number;
  readonly coordinatorId: string;
  readonly url: string;
  readonly region: string;
  readonly openedAt: Date;
  /** Whether the backend that opened the term still holds the coordinator lock on this server. */
  readonly live: boolean;
}

/** Blocks until this session holds the coordinator lock of schema `s`. */
export const acquireCoordinatorLockSql = `SELECT pg_advisory_lock(${COORDINATOR_LOCK_CLASS_ID}, hashtext($1))`;

/** SQL that matches the coordinator lock of the schema named in $1 in pg_locks (alias l). */
const COORDINATOR_LOCK_MATCH_SQL = `l.locktype = 'advisory' AND l.granted AND l.classid = ${COORDINATOR_LOCK_CLASS_ID}::oid
  AND l.objid::bigint = (hashtext($1)::bigint & 4294967295) AND l.objsubid = 2
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`;

/**
 * The active coordinator's term, or undefined when no coordinator ever opened
 * one here. `live` is read from pg_locks, not taken from the row: a term whose
 * backend is gone belongs to a coordinator that is no longer active.
 */
export async function readCoordinatorTerm(db: Queryable, s: SchemaName): Promise<CoordinatorTerm | undefined> {
  const r = await db.query<{ term: string; coordinator_id: string; url: string; region: string; opened_at: Date; live: boolean }>(
    `SELECT t.term, t.coordinator_id, t.url, t.region, t.opened_at,
            EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = t.backend_pid AND ${COORDINATOR_LOCK_MATCH_SQL}) AS live
       FROM ${s.q("coordinator_term")} t WHERE t.tier = 'coordinators'`,
    [s.name],
  );
  const row = r.rows[0];
  if (!row) return undefined;
  return { term: Number(row.term), coordinatorId: row.coordinator_id, url: row.url, region: row.region, openedAt: row.opened_at, live: row.live };
}

/** Opens the next term; the session must hold the coordinator lock (else AH007). */
export async function openCoordinatorTerm(db: Queryable, s: SchemaName, coordinatorId: string, url: string, region: string, atLeast: number): Promise<number> {
  const r = await db.query<{ term: string }>(`SELECT ${s.q("open_coordinator_term")}($1, $2, $3, $4) AS term`, [coordinatorId, url, region, atLeast]);
  return Number(r.rows[0]!.term);
}

/**
 * Whether a command stamped with coordinator term `term` comes from the active
 * coordinator, judged on this server: its term must be the recorded one and
 * that term's backend must still hold the coordinator lock. Term 0 (a
 * coordinator that never took part in an election) passes only where no
 * coordinator ever opened a term. Returns the refusal, or undefined.
 */
export async function commandTermRefusal(db: Queryable, s: SchemaName, term: number): Promise<string | undefined> {
  const active = await readCoordinatorTerm(db, s);
  if (!active) return term === 0 ? undefined : `no coordinator term is recorded in the lock database, yet the command claims term ${term}`;
  if (term !== active.term) {
    return `the command comes from coordinator term ${term}, but the active coordinator is ${active.coordinatorId} (${active.url}) in term ${active.term}`;
  }
  if (!active.live) return `coordinator term ${term} (${active.coordinatorId}) no longer holds the coordinator lock`;
  return undefined;
}

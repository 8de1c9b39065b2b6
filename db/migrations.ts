import type pg from "pg";
import { LOCK_CLASS_ID, type SchemaName } from "./identifiers.js";
import { EPOCH_GATE_CLASS_ID, MAX_EPOCH_JUMP } from "./leadership.js";

/**
 * Versioned, idempotent migrations. They run in one transaction behind a
 * transaction-scoped advisory lock, so agents starting together apply each
 * version exactly once and never see a half-made schema.
 */
interface Migration {
  readonly version: number;
  readonly name: string;
  sql(s: SchemaName): string;
}

const migrations: readonly Migration[] = [
  {
    version: 1,
    name: "leadership tables",
    sql: (s) => `
      CREATE TABLE IF NOT EXISTS ${s.q("leadership_state")} (
        cluster_id   text PRIMARY KEY,
        holder_id    text,
        epoch        bigint NOT NULL DEFAULT 0,
        acquired_at  timestamptz,
        heartbeat_at timestamptz
      );
      COMMENT ON TABLE ${s.q("leadership_state")} IS
        'autonomy-ha: one row per cluster; who holds write authority and its epoch (fencing token)';
      CREATE TABLE IF NOT EXISTS ${s.q("leader_epochs")} (
        cluster_id  text NOT NULL DEFAULT 'default',
        epoch       bigint NOT NULL,
        holder_id   text NOT NULL,
        acquired_at timestamptz NOT NULL DEFAULT now(),
        resigned_at timestamptz,
        end_reason  text CHECK (end_reason IN ('resigned', 'superseded')),
        PRIMARY KEY (cluster_id, epoch)
      );
      COMMENT ON TABLE ${s.q("leader_epochs")} IS
        'autonomy-ha: every term ever opened; resigned_at IS NULL while open';
    `,
  },
  {
    version: 2,
    name: "epoch functions",
    sql: (s) => `
      -- Called by applications inside their own transaction before a protected
      -- write. FOR KEY SHARE does not block the leader's heartbeat (a non-key
      -- update) but does block open_epoch/close_epoch (FOR UPDATE), so every
      -- write fenced with epoch N commits before epoch N+1 can begin.
      CREATE OR REPLACE FUNCTION ${s.q("assert_epoch")}(p_epoch bigint, p_cluster_id text DEFAULT 'default')
      RETURNS bigint LANGUAGE plpgsql AS $fn$
      DECLARE
        v_epoch  bigint;
        v_holder text;
      BEGIN
        SELECT epoch, holder_id INTO v_epoch, v_holder
          FROM ${s.q("leadership_state")} WHERE cluster_id = p_cluster_id FOR KEY SHARE;
        IF NOT FOUND OR v_holder IS NULL OR p_epoch IS DISTINCT FROM v_epoch THEN
          RAISE EXCEPTION USING
            ERRCODE = 'AH001',
            MESSAGE = format('stale epoch %s: current epoch of cluster %s is %s (holder %s)',
                             p_epoch, p_cluster_id, coalesce(v_epoch, 0), coalesce(v_holder, 'none')),
            HINT = 'this writer no longer holds write authority; re-read the leader and retry with its epoch';
        END IF;
        RETURN v_epoch;
      END
      $fn$;

      -- Opens the next epoch for the caller, who must hold the advisory lock.
      -- The new epoch is above every epoch recorded here and above p_floor (the
      -- highest epoch seen anywhere in the cluster), so no epoch is reused even
      -- after a database failover lost the rows that recorded it.
      CREATE OR REPLACE FUNCTION ${s.q("open_epoch")}(p_cluster_id text, p_holder text, p_floor bigint)
      RETURNS TABLE (epoch bigint, acquired_at timestamptz, superseded bigint[])
      LANGUAGE plpgsql AS $fn$
      DECLARE
        v_state  bigint;
        v_max    bigint;
        v_new    bigint;
        v_closed bigint[];
      BEGIN
        IF NOT EXISTS (
          SELECT 1 FROM pg_locks
           WHERE pid = pg_backend_pid() AND locktype = 'advisory' AND granted
             AND classid = ${LOCK_CLASS_ID}::oid
             AND objid::bigint = (hashtext(p_cluster_id)::bigint & 4294967295)
             AND objsubid = 2) THEN
          RAISE EXCEPTION USING ERRCODE = 'AH002',
            MESSAGE = format('open_epoch: this session does not hold the leader lock of cluster %s', p_cluster_id);
        END IF;
        INSERT INTO ${s.q("leadership_state")} (cluster_id) VALUES (p_cluster_id) ON CONFLICT DO NOTHING;
        SELECT ls.epoch INTO v_state FROM ${s.q("leadership_state")} ls WHERE ls.cluster_id = p_cluster_id FOR UPDATE;
        SELECT coalesce(max(le.epoch), 0) INTO v_max FROM ${s.q("leader_epochs")} le WHERE le.cluster_id = p_cluster_id;
        v_new := greatest(v_state, v_max, coalesce(p_floor, 0)) + 1;
        WITH closed AS (
          UPDATE ${s.q("leader_epochs")} le SET resigned_at = now(), end_reason = 'superseded'
           WHERE le.cluster_id = p_cluster_id AND le.resigned_at IS NULL
          RETURNING le.epoch)
        SELECT coalesce(array_agg(closed.epoch ORDER BY closed.epoch), '{}') INTO v_closed FROM closed;
        INSERT INTO ${s.q("leader_epochs")} (cluster_id, epoch, holder_id, acquired_at)
             VALUES (p_cluster_id, v_new, p_holder, now());
        UPDATE ${s.q("leadership_state")} ls
           SET holder_id = p_holder, epoch = v_new, acquired_at = now(), heartbeat_at = now()
         WHERE ls.cluster_id = p_cluster_id;
        RETURN QUERY SELECT v_new, now(), v_closed;
      END
      $fn$;

      -- Closes an epoch. Conditional on the holder and epoch, so a stale node
      -- (or an operator acting on one) can never close the current leader's term.
      CREATE OR REPLACE FUNCTION ${s.q("close_epoch")}(p_cluster_id text, p_holder text, p_epoch bigint, p_reason text)
      RETURNS timestamptz LANGUAGE plpgsql AS $fn$
      DECLARE
        v_at timestamptz := now();
      BEGIN
        PERFORM 1 FROM ${s.q("leadership_state")} ls WHERE ls.cluster_id = p_cluster_id FOR UPDATE;
        UPDATE ${s.q("leader_epochs")} le SET resigned_at = v_at, end_reason = p_reason
         WHERE le.cluster_id = p_cluster_id AND le.epoch = p_epoch AND le.holder_id = p_holder AND le.resigned_at IS NULL;
        UPDATE ${s.q("leadership_state")} ls SET holder_id = NULL
         WHERE ls.cluster_id = p_cluster_id AND ls.holder_id = p_holder AND ls.epoch = p_epoch;
        RETURN v_at;
      END
      $fn$;
    `,
  },
  {
    version: 3,
    name: "assert_epoch runs as its owner",
    // FOR KEY SHARE needs UPDATE privilege on leadership_state; as SECURITY
    // DEFINER an application role needs only EXECUTE. The pinned search_path
    // keeps a caller's objects from shadowing ours.
    sql: (s) => `
      ALTER FUNCTION ${s.q("assert_epoch")}(bigint, text) SECURITY DEFINER;
      ALTER FUNCTION ${s.q("assert_epoch")}(bigint, text) SET search_path = pg_catalog, ${s.quoted};
      REVOKE ALL ON FUNCTION ${s.q("assert_epoch")}(bigint, text) FROM PUBLIC;
      GRANT EXECUTE ON FUNCTION ${s.q("assert_epoch")}(bigint, text) TO PUBLIC;
    `,
  },
  {
    version: 4,
    name: "epoch floor in the database, bounded floors, the epoch gate",
    sql: (s) => `
      -- The highest epoch the coordinator confirmed in this database, kept with
      -- the server's identity. It replicates, so a promoted standby carries it;
      -- a freshly initialised server has another identity and starts from zero.
      CREATE TABLE IF NOT EXISTS ${s.q("epoch_floor")} (
        cluster_id        text NOT NULL,
        system_identifier text NOT NULL,
        floor             bigint NOT NULL CHECK (floor >= 0),
        updated_at        timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (cluster_id, system_identifier)
      );
      COMMENT ON TABLE ${s.q("epoch_floor")} IS
        'autonomy-ha: the highest epoch confirmed in this database per cluster; only ever raised';

      -- The fence. A fenced transaction holds the cluster's epoch gate shared
      -- until it ends; open_epoch and close_epoch take it exclusive first. The
      -- heavyweight lock queue makes a new shared request wait behind a queued
      -- exclusive one, so a stream of fenced writes cannot starve a change of
      -- epoch (row locks let a new FOR KEY SHARE pass a waiting FOR UPDATE),
      -- while every write fenced with epoch N still commits before N+1 opens.
      --
      -- FOR KEY SHARE stays: it does not block heartbeats (a non-key update),
      -- and it makes a REPEATABLE READ caller whose snapshot predates the new
      -- epoch fail with a serialization error instead of reading the old one.
      --
      -- The error names no holder: a stale writer needs only "your epoch is
      -- stale; the current epoch is N" to re-read the leader, and anyone may
      -- call this function with any cluster id. Operators see the holder
      -- through the API. SQLSTATE stays AH001.
      CREATE OR REPLACE FUNCTION ${s.q("assert_epoch")}(p_epoch bigint, p_cluster_id text DEFAULT 'default')
      RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, ${s.quoted} AS $fn$
      DECLARE
        v_epoch  bigint;
        v_holder text;
      BEGIN
        PERFORM pg_advisory_xact_lock_shared(${EPOCH_GATE_CLASS_ID}, hashtext(p_cluster_id));
        SELECT epoch, holder_id INTO v_epoch, v_holder
          FROM ${s.q("leadership_state")} WHERE cluster_id = p_cluster_id FOR KEY SHARE;
        IF NOT FOUND OR v_holder IS NULL OR p_epoch IS DISTINCT FROM v_epoch THEN
          RAISE EXCEPTION USING
            ERRCODE = 'AH001',
            MESSAGE = format('stale epoch %s: current epoch of cluster %s is %s%s',
                             p_epoch, p_cluster_id, coalesce(v_epoch, 0),
                             CASE WHEN v_holder IS NULL THEN ' (no term is open)' ELSE '' END),
            HINT = 'this writer no longer holds write authority; re-read the leader and retry with its epoch';
        END IF;
        RETURN v_epoch;
      END
      $fn$;
      REVOKE ALL ON FUNCTION ${s.q("assert_epoch")}(bigint, text) FROM PUBLIC;
      GRANT EXECUTE ON FUNCTION ${s.q("assert_epoch")}(bigint, text) TO PUBLIC;

      -- As in version 2, plus: the gate; the stored floor counts as confirmed;
      -- and a floor more than ${MAX_EPOCH_JUMP} above the highest epoch this
      -- database confirms is refused (AH003) rather than taken, so a forged
      -- floor can never push the next term out of reach. The leader-lock check
      -- comes before the gate, so a session without the lock never queues on it.
      CREATE OR REPLACE FUNCTION ${s.q("open_epoch")}(p_cluster_id text, p_holder text, p_floor bigint)
      RETURNS TABLE (epoch bigint, acquired_at timestamptz, superseded bigint[])
      LANGUAGE plpgsql AS $fn$
      DECLARE
        v_state     bigint;
        v_max       bigint;
        v_stored    bigint;
        v_confirmed bigint;
        v_new       bigint;
        v_closed    bigint[];
      BEGIN
        IF NOT EXISTS (
          SELECT 1 FROM pg_locks
           WHERE pid = pg_backend_pid() AND locktype = 'advisory' AND granted
             AND classid = ${LOCK_CLASS_ID}::oid
             AND objid::bigint = (hashtext(p_cluster_id)::bigint & 4294967295)
             AND objsubid = 2) THEN
          RAISE EXCEPTION USING ERRCODE = 'AH002',
            MESSAGE = format('open_epoch: this session does not hold the leader lock of cluster %s', p_cluster_id);
        END IF;
        PERFORM pg_advisory_xact_lock(${EPOCH_GATE_CLASS_ID}, hashtext(p_cluster_id));
        INSERT INTO ${s.q("leadership_state")} (cluster_id) VALUES (p_cluster_id) ON CONFLICT DO NOTHING;
        SELECT ls.epoch INTO v_state FROM ${s.q("leadership_state")} ls WHERE ls.cluster_id = p_cluster_id FOR UPDATE;
        SELECT coalesce(max(le.epoch), 0) INTO v_max FROM ${s.q("leader_epochs")} le WHERE le.cluster_id = p_cluster_id;
        SELECT coalesce(max(f.floor), 0) INTO v_stored FROM ${s.q("epoch_floor")} f
         WHERE f.cluster_id = p_cluster_id AND f.system_identifier = (SELECT system_identifier::text FROM pg_control_system());
        v_confirmed := greatest(v_state, v_max, v_stored);
        IF coalesce(p_floor, 0) > v_confirmed + ${MAX_EPOCH_JUMP} THEN
          RAISE EXCEPTION USING ERRCODE = 'AH003',
            MESSAGE = format('open_epoch: floor %s is more than ${MAX_EPOCH_JUMP} above epoch %s, the highest epoch this database confirms for cluster %s; refused',
                             p_floor, v_confirmed, p_cluster_id),
            HINT = 'a floor that far above the database comes from a forged or corrupt report, not from a real term';
        END IF;
        v_new := greatest(v_confirmed, coalesce(p_floor, 0)) + 1;
        WITH closed AS (
          UPDATE ${s.q("leader_epochs")} le SET resigned_at = now(), end_reason = 'superseded'
           WHERE le.cluster_id = p_cluster_id AND le.resigned_at IS NULL
          RETURNING le.epoch)
        SELECT coalesce(array_agg(closed.epoch ORDER BY closed.epoch), '{}') INTO v_closed FROM closed;
        INSERT INTO ${s.q("leader_epochs")} (cluster_id, epoch, holder_id, acquired_at)
             VALUES (p_cluster_id, v_new, p_holder, now());
        UPDATE ${s.q("leadership_state")} ls
           SET holder_id = p_holder, epoch = v_new, acquired_at = now(), heartbeat_at = now()
         WHERE ls.cluster_id = p_cluster_id;
        RETURN QUERY SELECT v_new, now(), v_closed;
      END
      $fn$;

      -- As in version 2, behind the gate.
      CREATE OR REPLACE FUNCTION ${s.q("close_epoch")}(p_cluster_id text, p_holder text, p_epoch bigint, p_reason text)
      RETURNS timestamptz LANGUAGE plpgsql AS $fn$
      DECLARE
        v_at timestamptz := now();
      BEGIN
        PERFORM pg_advisory_xact_lock(${EPOCH_GATE_CLASS_ID}, hashtext(p_cluster_id));
        PERFORM 1 FROM ${s.q("leadership_state")} ls WHERE ls.cluster_id = p_cluster_id FOR UPDATE;
        UPDATE ${s.q("leader_epochs")} le SET resigned_at = v_at, end_reason = p_reason
         WHERE le.cluster_id = p_cluster_id AND le.epoch = p_epoch AND le.holder_id = p_holder AND le.resigned_at IS NULL;
        UPDATE ${s.q("leadership_state")} ls SET holder_id = NULL
         WHERE ls.cluster_id = p_cluster_id AND ls.holder_id = p_holder AND ls.epoch = p_epoch;
        RETURN v_at;
      END
      $fn$;
    `,
  },
];

export const LATEST_SCHEMA_VERSION = migrations[migrations.length - 1]!.version;

/** A migration lock key of its own, apart from the leader lock's (classid, objid) space. */
const MIGRATION_LOCK_KEY = 0x4148_4d47; // "AHMG"

export interface MigrationResult {
  readonly applied: number[];
  readonly version: number;
}

/** Applies every pending migration. Safe to call from many processes at once. */
export async function migrate(client: pg.ClientBase, schema: SchemaName): Promise<MigrationResult> {
  await client.query("BEGIN");
  try {
    await client.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK_KEY]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema.quoted}`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${schema.q("autonomy_schema_migrations")} (
      version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = await client.query<{ version: number }>(`SELECT version FROM ${schema.q("autonomy_schema_migrations")}`);
    const have = new Set(done.rows.map((r) => r.version));
    const applied: number[] = [];
    for (const m of migrations) {
      if (have.has(m.version)) continue;
      await client.query(m.sql(schema));
      await client.query(`INSERT INTO ${schema.q("autonomy_schema_migrations")} (version, name) VALUES ($1, $2)`, [m.version, m.name]);
      applied.push(m.version);
    }
    await client.query("COMMIT");
    return { applied, version: LATEST_SCHEMA_VERSION };
  } catch (err) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw err;
  }
}

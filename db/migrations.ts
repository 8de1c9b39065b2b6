import type pg from "pg";
import { COORDINATOR_LOCK_CLASS_ID, LOCK_CLASS_ID, type SchemaName } from "./identifiers.js";
import { EPOCH_GATE_CLASS_ID, MAX_EPOCH_JUMP, TERM_CHANNEL } from "./leadership.js";

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
  {
    version: 5,
    name: "promotion stamps and the fence of a superseded server",
    sql: (s) => `
      -- A server's timeline: on a primary the current WAL file names it at once
      -- (the checkpoint's lags a promotion); on a standby, the timeline it
      -- receives when streaming (its last checkpoint's lags until a restartpoint).
      CREATE OR REPLACE FUNCTION ${s.q("current_timeline")}() RETURNS int
      LANGUAGE sql STABLE SET search_path = pg_catalog AS $fn$
        SELECT CASE WHEN pg_is_in_recovery()
                    THEN greatest((SELECT timeline_id FROM pg_control_checkpoint()),
                                  (SELECT max(received_tli) FROM pg_stat_wal_receiver))
               ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END
      $fn$;

      -- Every promotion of a server of this system, as stamped: automatically by
      -- the first term opened on a new timeline, or explicitly by stamp_promotion
      -- (autonomy db stamp, or a failover tool's post-promote hook). Rows
      -- replicate, so a standby and a later promotion carry them; a zombie
      -- primary lacks the ones written after it was cut off.
      CREATE TABLE IF NOT EXISTS ${s.q("promotions")} (
        id                bigserial PRIMARY KEY,
        cluster_id        text NOT NULL,
        system_identifier text NOT NULL,
        timeline          int NOT NULL,
        stamped_epoch     bigint NOT NULL,
        region            text NOT NULL DEFAULT '',
        actor             text NOT NULL,
        reason            text NOT NULL,
        automatic         boolean NOT NULL,
        stamped_at        timestamptz NOT NULL DEFAULT now()
      );
      COMMENT ON TABLE ${s.q("promotions")} IS
        'autonomy-ha: promotion stamps; the highest (timeline, stamped_epoch) of a system is its authoritative primary';

      -- The timeline each term opened on (NULL for terms opened before version 5).
      ALTER TABLE ${s.q("leader_epochs")} ADD COLUMN IF NOT EXISTS timeline int;

      -- Written on a server found superseded (a promoted server of the same
      -- system is ahead of it). Keyed by the server's own (system, timeline):
      -- once the server is rewound or re-cloned onto the new timeline the row
      -- no longer applies. While it applies, no term opens here and every
      -- assert_epoch fails.
      CREATE TABLE IF NOT EXISTS ${s.q("database_fence")} (
        system_identifier      text NOT NULL,
        timeline               int NOT NULL,
        superseded_by_timeline int NOT NULL,
        superseded_by_stamp    bigint NOT NULL,
        reason                 text NOT NULL,
        fenced_by              text NOT NULL,
        fenced_at              timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (system_identifier, timeline)
      );
      COMMENT ON TABLE ${s.q("database_fence")} IS
        'autonomy-ha: this server was superseded by a promoted one; no term may open or be asserted here';

      -- Why this server is fenced, or NULL. Cheap when nothing is fenced.
      CREATE OR REPLACE FUNCTION ${s.q("fence_reason")}() RETURNS text
      LANGUAGE plpgsql STABLE SET search_path = pg_catalog, ${s.quoted} AS $fn$
      DECLARE
        v_reason text;
      BEGIN
        IF NOT EXISTS (SELECT 1 FROM ${s.q("database_fence")}) THEN
          RETURN NULL;
        END IF;
        SELECT format('this server (timeline %s) was superseded by timeline %s, stamp %s: %s',
                      f.timeline, f.superseded_by_timeline, f.superseded_by_stamp, f.reason)
          INTO v_reason
          FROM ${s.q("database_fence")} f
         WHERE f.system_identifier = (SELECT system_identifier::text FROM pg_control_system())
           AND f.timeline = ${s.q("current_timeline")}();
        RETURN v_reason;
      END
      $fn$;

      -- As in version 4, and refused outright on a fenced server.
      CREATE OR REPLACE FUNCTION ${s.q("assert_epoch")}(p_epoch bigint, p_cluster_id text DEFAULT 'default')
      RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, ${s.quoted} AS $fn$
      DECLARE
        v_epoch  bigint;
        v_holder text;
        v_fence  text;
      BEGIN
        PERFORM pg_advisory_xact_lock_shared(${EPOCH_GATE_CLASS_ID}, hashtext(p_cluster_id));
        v_fence := ${s.q("fence_reason")}();
        IF v_fence IS NOT NULL THEN
          RAISE EXCEPTION USING
            ERRCODE = 'AH001',
            MESSAGE = format('stale epoch %s: %s', p_epoch, v_fence),
            HINT = 'this database is no longer the primary of the cluster; re-read the leader and write through the promoted server';
        END IF;
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

      -- As in version 4, plus: refused on a fenced server (AH004); and the first
      -- term on a new timeline stamps the promotion (the fence of seed 004 §3).
      -- Its epoch is above every epoch this server confirms and above p_floor,
      -- the highest epoch the opener saw on any server of the cluster, so terms
      -- lost with an async standby's promotion are never reused.
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
        v_sysid     text := (SELECT system_identifier::text FROM pg_control_system());
        v_timeline  int;
        v_fence     text;
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
        v_fence := ${s.q("fence_reason")}();
        IF v_fence IS NOT NULL THEN
          RAISE EXCEPTION USING ERRCODE = 'AH004',
            MESSAGE = format('open_epoch: no term opens here: %s', v_fence),
            HINT = 'connect to the promoted server (list every server in --database-url with target_session_attrs=read-write)';
        END IF;
        INSERT INTO ${s.q("leadership_state")} (cluster_id) VALUES (p_cluster_id) ON CONFLICT DO NOTHING;
        SELECT ls.epoch INTO v_state FROM ${s.q("leadership_state")} ls WHERE ls.cluster_id = p_cluster_id FOR UPDATE;
        SELECT coalesce(max(le.epoch), 0) INTO v_max FROM ${s.q("leader_epochs")} le WHERE le.cluster_id = p_cluster_id;
        SELECT coalesce(max(f.floor), 0) INTO v_stored FROM ${s.q("epoch_floor")} f
         WHERE f.cluster_id = p_cluster_id AND f.system_identifier = v_sysid;
        v_confirmed := greatest(v_state, v_max, v_stored);
        IF coalesce(p_floor, 0) > v_confirmed + ${MAX_EPOCH_JUMP} THEN
          RAISE EXCEPTION USING ERRCODE = 'AH003',
            MESSAGE = format('open_epoch: floor %s is more than ${MAX_EPOCH_JUMP} above epoch %s, the highest epoch this database confirms for cluster %s; refused',
                             p_floor, v_confirmed, p_cluster_id),
            HINT = 'a floor that far above the database comes from a forged or corrupt report, not from a real term';
        END IF;
        v_new := greatest(v_confirmed, coalesce(p_floor, 0)) + 1;
        v_timeline := ${s.q("current_timeline")}();
        IF EXISTS (SELECT 1 FROM ${s.q("leader_epochs")} le WHERE le.cluster_id = p_cluster_id AND le.timeline < v_timeline)
           AND NOT EXISTS (SELECT 1 FROM ${s.q("leader_epochs")} le WHERE le.cluster_id = p_cluster_id AND le.timeline >= v_timeline)
           AND NOT EXISTS (SELECT 1 FROM ${s.q("promotions")} pr
                            WHERE pr.cluster_id = p_cluster_id AND pr.system_identifier = v_sysid AND pr.timeline >= v_timeline) THEN
          INSERT INTO ${s.q("promotions")} (cluster_id, system_identifier, timeline, stamped_epoch, actor, reason, automatic)
               VALUES (p_cluster_id, v_sysid, v_timeline, v_new, p_holder, format('first term on timeline %s', v_timeline), true);
        END IF;
        WITH closed AS (
          UPDATE ${s.q("leader_epochs")} le SET resigned_at = now(), end_reason = 'superseded'
           WHERE le.cluster_id = p_cluster_id AND le.resigned_at IS NULL
          RETURNING le.epoch)
        SELECT coalesce(array_agg(closed.epoch ORDER BY closed.epoch), '{}') INTO v_closed FROM closed;
        INSERT INTO ${s.q("leader_epochs")} (cluster_id, epoch, holder_id, acquired_at, timeline)
             VALUES (p_cluster_id, v_new, p_holder, now(), v_timeline);
        UPDATE ${s.q("leadership_state")} ls
           SET holder_id = p_holder, epoch = v_new, acquired_at = now(), heartbeat_at = now()
         WHERE ls.cluster_id = p_cluster_id;
        RETURN QUERY SELECT v_new, now(), v_closed;
      END
      $fn$;

      -- Seed 004 §3, as a function any failover tool can call after a promotion:
      -- ends any open term, raises the writer epoch above every epoch this
      -- server confirms and above p_at_least (the highest epoch seen elsewhere,
      -- within ${MAX_EPOCH_JUMP}), and records the region and the actor. The next
      -- term opens above the stamp. Refused on a standby and on a fenced server.
      CREATE OR REPLACE FUNCTION ${s.q("stamp_promotion")}(p_cluster_id text, p_region text, p_actor text, p_reason text, p_at_least bigint DEFAULT 0)
      RETURNS TABLE (stamped_epoch bigint, system_identifier text, timeline int, closed bigint[])
      LANGUAGE plpgsql AS $fn$
      #variable_conflict use_column
      DECLARE
        v_sysid     text := (SELECT pc.system_identifier::text FROM pg_control_system() pc);
        v_timeline  int;
        v_confirmed bigint;
        -- The result columns share names with table columns: qualify every use.
        v_stamp     bigint;
        v_closed    bigint[];
        v_fence     text;
      BEGIN
        IF pg_is_in_recovery() THEN
          RAISE EXCEPTION USING ERRCODE = 'AH005',
            MESSAGE = 'stamp_promotion: this server is a standby (in recovery); stamp the promoted primary',
            HINT = 'run it after pg_ctl promote / the failover tool has promoted this server';
        END IF;
        PERFORM pg_advisory_xact_lock(${EPOCH_GATE_CLASS_ID}, hashtext(p_cluster_id));
        v_fence := ${s.q("fence_reason")}();
        IF v_fence IS NOT NULL THEN
          RAISE EXCEPTION USING ERRCODE = 'AH004', MESSAGE = format('stamp_promotion: refused: %s', v_fence);
        END IF;
        INSERT INTO ${s.q("leadership_state")} (cluster_id) VALUES (p_cluster_id) ON CONFLICT DO NOTHING;
        PERFORM 1 FROM ${s.q("leadership_state")} ls WHERE ls.cluster_id = p_cluster_id FOR UPDATE;
        v_confirmed := greatest(
          (SELECT coalesce(max(ls.epoch), 0) FROM ${s.q("leadership_state")} ls WHERE ls.cluster_id = p_cluster_id),
          (SELECT coalesce(max(le.epoch), 0) FROM ${s.q("leader_epochs")} le WHERE le.cluster_id = p_cluster_id),
          (SELECT coalesce(max(f.floor), 0) FROM ${s.q("epoch_floor")} f WHERE f.cluster_id = p_cluster_id AND f.system_identifier = v_sysid),
          (SELECT coalesce(max(pr.stamped_epoch), 0) FROM ${s.q("promotions")} pr WHERE pr.cluster_id = p_cluster_id AND pr.system_identifier = v_sysid));
        IF coalesce(p_at_least, 0) > v_confirmed + ${MAX_EPOCH_JUMP} THEN
          RAISE EXCEPTION USING ERRCODE = 'AH003',
            MESSAGE = format('stamp_promotion: --at-least %s is more than ${MAX_EPOCH_JUMP} above epoch %s, the highest epoch this server confirms; refused',
                             p_at_least, v_confirmed);
        END IF;
        v_stamp := greatest(v_confirmed, coalesce(p_at_least, 0)) + 1;
        v_timeline := ${s.q("current_timeline")}();
        WITH ended AS (
          UPDATE ${s.q("leader_epochs")} le SET resigned_at = now(), end_reason = 'superseded'
           WHERE le.cluster_id = p_cluster_id AND le.resigned_at IS NULL
          RETURNING le.epoch)
        SELECT coalesce(array_agg(ended.epoch ORDER BY ended.epoch), '{}') INTO v_closed FROM ended;
        UPDATE ${s.q("leadership_state")} ls SET holder_id = NULL, epoch = v_stamp WHERE ls.cluster_id = p_cluster_id;
        INSERT INTO ${s.q("epoch_floor")} AS f (cluster_id, system_identifier, floor, updated_at)
             VALUES (p_cluster_id, v_sysid, v_stamp, now())
        ON CONFLICT (cluster_id, system_identifier) DO UPDATE SET floor = greatest(f.floor, excluded.floor), updated_at = now();
        INSERT INTO ${s.q("promotions")} (cluster_id, system_identifier, timeline, stamped_epoch, region, actor, reason, automatic)
             VALUES (p_cluster_id, v_sysid, v_timeline, v_stamp, coalesce(p_region, ''), p_actor, p_reason, false);
        RETURN QUERY SELECT v_stamp, v_sysid, v_timeline, v_closed;
      END
      $fn$;
      REVOKE ALL ON FUNCTION ${s.q("stamp_promotion")}(text, text, text, text, bigint) FROM PUBLIC;

      -- Fences this server: called on a server found superseded, by an agent or
      -- the coordinator that read the promoted server itself. Ends every open
      -- term of every cluster here so assert_epoch rejects all epochs at once.
      -- Refused when the caller's evidence is not ahead of this server.
      CREATE OR REPLACE FUNCTION ${s.q("fence_superseded")}(p_by_timeline int, p_by_stamp bigint, p_reason text, p_fenced_by text)
      RETURNS boolean LANGUAGE plpgsql AS $fn$
      DECLARE
        v_sysid    text := (SELECT pc.system_identifier::text FROM pg_control_system() pc);
        v_timeline int := ${s.q("current_timeline")}();
        v_stamp    bigint := (SELECT coalesce(max(pr.stamped_epoch), 0) FROM ${s.q("promotions")} pr WHERE pr.system_identifier = v_sysid AND pr.timeline <= v_timeline);
        v_cluster  text;
      BEGIN
        IF (p_by_timeline, p_by_stamp) <= (v_timeline, v_stamp) THEN
          RAISE EXCEPTION USING ERRCODE = 'AH006',
            MESSAGE = format('fence_superseded: refused: this server (timeline %s, stamp %s) is not behind timeline %s, stamp %s',
                             v_timeline, v_stamp, p_by_timeline, p_by_stamp);
        END IF;
        INSERT INTO ${s.q("database_fence")} (system_identifier, timeline, superseded_by_timeline, superseded_by_stamp, reason, fenced_by)
             VALUES (v_sysid, v_timeline, p_by_timeline, p_by_stamp, p_reason, p_fenced_by)
        ON CONFLICT (system_identifier, timeline) DO NOTHING;
        IF NOT FOUND THEN
          RETURN false;
        END IF;
        FOR v_cluster IN SELECT ls.cluster_id FROM ${s.q("leadership_state")} ls LOOP
          PERFORM pg_advisory_xact_lock(${EPOCH_GATE_CLASS_ID}, hashtext(v_cluster));
        END LOOP;
        UPDATE ${s.q("leader_epochs")} le SET resigned_at = now(), end_reason = 'superseded' WHERE le.resigned_at IS NULL;
        UPDATE ${s.q("leadership_state")} ls SET holder_id = NULL WHERE ls.holder_id IS NOT NULL;
        RETURN true;
      END
      $fn$;
      REVOKE ALL ON FUNCTION ${s.q("fence_superseded")}(int, bigint, text, text) FROM PUBLIC;
    `,
  },
  {
    version: 6,
    name: "durable coordinator state",
    // What an operator or a recovery set on the coordinator outlives it: a
    // restarted (or another) coordinator continues from here, and agents read
    // reconcile_hold before they campaign on their own, with no coordinator up.
    sql: (s) => `
      CREATE TABLE IF NOT EXISTS ${s.q("coordinator_state")} (
        cluster_id            text PRIMARY KEY,
        maintenance           boolean NOT NULL DEFAULT false,
        maintenance_by        text NOT NULL DEFAULT '',
        maintenance_reason    text NOT NULL DEFAULT '',
        maintenance_at        timestamptz,
        reconcile_hold        boolean NOT NULL DEFAULT false,
        reconcile_hold_by     text NOT NULL DEFAULT '',
        reconcile_hold_reason text NOT NULL DEFAULT '',
        reconcile_hold_at     timestamptz
      );
      COMMENT ON TABLE ${s.q("coordinator_state")} IS
        'autonomy-ha: maintenance mode and the manual-reconcile hold per cluster, as the coordinator last set them';
    `,
  },
  {
    version: 7,
    name: "coordinator tier",
    // Several coordinators elect an active one through their own advisory
    // lock (COORDINATOR_LOCK_CLASS_ID, apart from every cluster's leader lock)
    // and number its terms; agents check a command's term here before they
    // obey it. Admin requests are remembered by idempotency key, so a request
    // retried on the next active coordinator returns its first result, and
    // the audit is kept here too, so every coordinator answers for all of it.
    sql: (s) => `
      CREATE TABLE IF NOT EXISTS ${s.q("coordinator_term")} (
        tier           text PRIMARY KEY,
        term           bigint NOT NULL,
        coordinator_id text NOT NULL,
        url            text NOT NULL,
        region         text NOT NULL DEFAULT '',
        backend_pid    int NOT NULL,
        opened_at      timestamptz NOT NULL
      );
      COMMENT ON TABLE ${s.q("coordinator_term")} IS
        'autonomy-ha: the active coordinator: its term, its URL and the backend holding the coordinator lock';

      CREATE TABLE IF NOT EXISTS ${s.q("coordinator_requests")} (
        idempotency_key text PRIMARY KEY,
        method          text NOT NULL,
        digest          text NOT NULL,
        cluster_id      text NOT NULL,
        term            bigint NOT NULL,
        leader_epoch    bigint NOT NULL,
        state           text NOT NULL CHECK (state IN ('running', 'done', 'failed')),
        response        bytea,
        error_code      text,
        error_message   text,
        started_at      timestamptz NOT NULL DEFAULT now(),
        finished_at     timestamptz
      );
      CREATE INDEX IF NOT EXISTS coordinator_requests_started ON ${s.q("coordinator_requests")} (started_at);

      CREATE TABLE IF NOT EXISTS ${s.q("audit_events")} (
        seq        bigserial PRIMARY KEY,
        id         text NOT NULL UNIQUE,
        cluster_id text NOT NULL,
        at         timestamptz NOT NULL,
        category   text NOT NULL,
        type       text NOT NULL,
        event      jsonb NOT NULL
      );
      CREATE INDEX IF NOT EXISTS audit_events_cluster ON ${s.q("audit_events")} (cluster_id, seq);

      ALTER TABLE ${s.q("coordinator_state")}
        ADD COLUMN IF NOT EXISTS last_automatic_failover_at timestamptz,
        ADD COLUMN IF NOT EXISTS designated_successor text NOT NULL DEFAULT '',
        ADD COLUMN IF NOT EXISTS designated_at timestamptz;

      -- Opens the next coordinator term; only the session holding the
      -- coordinator lock may. p_at_least: the highest term the caller has seen
      -- anywhere, so terms keep rising across a database failover.
      CREATE OR REPLACE FUNCTION ${s.q("open_coordinator_term")}(p_coordinator_id text, p_url text, p_region text, p_at_least bigint)
      RETURNS bigint LANGUAGE plpgsql AS $fn$
      DECLARE
        v_term bigint;
      BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_locks l
                        WHERE l.pid = pg_backend_pid() AND l.granted AND l.locktype = 'advisory'
                          AND l.classid = ${COORDINATOR_LOCK_CLASS_ID}::oid AND l.objid::bigint = (hashtext('${s.name}')::bigint & 4294967295)
                          AND l.objsubid = 2 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())) THEN
          RAISE EXCEPTION USING ERRCODE = 'AH007',
            MESSAGE = 'open_coordinator_term: refused: this session does not hold the coordinator lock';
        END IF;
        INSERT INTO ${s.q("coordinator_term")} AS t (tier, term, coordinator_id, url, region, backend_pid, opened_at)
             VALUES ('coordinators', greatest(coalesce(p_at_least, 0), 0) + 1, p_coordinator_id, p_url, coalesce(p_region, ''), pg_backend_pid(), now())
        ON CONFLICT (tier) DO UPDATE
              SET term = greatest(t.term, coalesce(p_at_least, 0)) + 1, coordinator_id = excluded.coordinator_id, url = excluded.url,
                  region = excluded.region, backend_pid = excluded.backend_pid, opened_at = excluded.opened_at
        RETURNING t.term INTO v_term;
        RETURN v_term;
      END
      $fn$;
      REVOKE ALL ON FUNCTION ${s.q("open_coordinator_term")}(text, text, text, bigint) FROM PUBLIC;
    `,
  },
  {
    version: 8,
    name: "term notices",
    // Followers hear of a new term when it commits instead of at their next
    // read: the highest epoch a follower has seen then covers a term that a
    // failover to an async standby loses, so the first term on the promoted
    // server still opens above it. Heartbeats and resigns send nothing: they
    // come in the middle of a handover, where a read on every node would
    // compete with it.
    sql: (s) => `
      CREATE OR REPLACE FUNCTION ${s.q("notify_term_change")}() RETURNS trigger
      LANGUAGE plpgsql AS $fn$
      BEGIN
        PERFORM pg_notify('${TERM_CHANNEL}', json_build_object('schema', TG_TABLE_SCHEMA, 'cluster_id', NEW.cluster_id, 'epoch', NEW.epoch)::text);
        RETURN NULL;
      END
      $fn$;
      DROP TRIGGER IF EXISTS term_changed ON ${s.q("leadership_state")};
      CREATE TRIGGER term_changed AFTER UPDATE OF epoch ON ${s.q("leadership_state")}
        FOR EACH ROW WHEN (OLD.epoch IS DISTINCT FROM NEW.epoch)
        EXECUTE FUNCTION ${s.q("notify_term_change")}();
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

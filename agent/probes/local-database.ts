import { classifyLag } from "../../core/lag.js";
import type { LocalDatabaseView } from "../../core/model.js";
import { describeError } from "../../core/errors.js";
import { TIMELINE_SQL } from "../../db/leadership.js";
import type { SideConnection } from "../../db/side-connection.js";

/**
 * Probes the node's own PostgreSQL. On a standby, replay lag is the age of the
 * last replayed transaction while WAL is waiting to be replayed, and 0 when
 * everything received has been replayed (an idle primary is not lag).
 */
export class LocalDatabaseProbe {
  constructor(
    private readonly local: SideConnection,
    private readonly thresholds: { warnSeconds: number; criticalSeconds: number },
  ) {}

  async measure(): Promise<LocalDatabaseView> {
    try {
      const [row] = await this.local.query<{
        in_recovery: boolean;
        system_identifier: string;
        timeline: number;
        receive_lsn: string | null;
        replay_lsn: string | null;
        lag_s: number | null;
        streaming: boolean | null;
      }>(
        `SELECT pg_is_in_recovery() AS in_recovery, s.system_identifier::text AS system_identifier,
                ${TIMELINE_SQL} AS timeline,
                CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn()::text ELSE pg_current_wal_lsn()::text END AS receive_lsn,
                CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()::text ELSE pg_current_wal_lsn()::text END AS replay_lsn,
                CASE WHEN NOT pg_is_in_recovery() THEN 0
                     WHEN pg_last_wal_receive_lsn() IS NULL OR pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0
                     ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 END AS lag_s,
                (SELECT status = 'streaming' FROM pg_stat_wal_receiver LIMIT 1) AS streaming
           FROM pg_control_system() s, pg_control_checkpoint() c`,
      );
      const lag = Math.max(0, row!.lag_s ?? 0);
      return {
        reachable: true,
        inRecovery: row!.in_recovery,
        timeline: row!.timeline,
        receiveLsn: row!.receive_lsn ?? "",
        replayLsn: row!.replay_lsn ?? "",
        replayLagSeconds: lag,
        lagStatus: classifyLag(lag, this.thresholds.warnSeconds, this.thresholds.criticalSeconds),
        systemIdentifier: row!.system_identifier,
        streaming: row!.streaming ?? false,
        error: "",
      };
    } catch (err) {
      return {
        reachable: false,
        inRecovery: false,
        timeline: 0,
        receiveLsn: "",
        replayLsn: "",
        replayLagSeconds: 0,
        lagStatus: "unknown",
        systemIdentifier: "",
        streaming: false,
        error: describeError(err),
      };
    }
  }
}

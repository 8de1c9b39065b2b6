import { classifyLag } from "../../core/lag.js";
import { unknownReplication, type ReplicaView, type ReplicationView } from "../../core/model.js";
import { describeError } from "../../core/errors.js";
import type { SideConnection } from "../../db/side-connection.js";
import { LsnHistory, parseLsn } from "./lsn.js";

interface ReplicationRow {
  current_lsn: string;
  application_name: string | null;
  client_addr: string | null;
  state: string | null;
  sync_state: string | null;
  write_lsn: string | null;
  replay_lsn: string | null;
  write_lag_s: number | null;
  replay_lag_s: number | null;
  replay_bytes: string | null;
}

/**
 * Measures the primary's standbys from pg_stat_replication. Each replica's
 * lag is the larger of Postgres's own figure and our LSN-history estimate.
 */
export class ReplicationProbe {
  private readonly history = new LsnHistory();

  constructor(
    private readonly primary: SideConnection,
    private readonly thresholds: { warnSeconds: number; criticalSeconds: number },
    private readonly monotonicMs: () => number,
  ) {}

  async measure(): Promise<ReplicationView> {
    try {
      // One statement: the current position is sampled in the same snapshot
      // as the replicas' positions. A LEFT JOIN keeps the position when there
      // are no replicas.
      const rows = await this.primary.query<ReplicationRow>(
        `SELECT pg_current_wal_lsn()::text AS current_lsn, r.application_name, host(r.client_addr) AS client_addr,
                r.state, r.sync_state, r.write_lsn::text AS write_lsn, r.replay_lsn::text AS replay_lsn,
                extract(epoch FROM r.write_lag)::float8 AS write_lag_s, extract(epoch FROM r.replay_lag)::float8 AS replay_lag_s,
                pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn)::text AS replay_bytes
           FROM (SELECT 1) one LEFT JOIN pg_stat_replication r ON true`,
      );
      const now = this.monotonicMs();
      const current = parseLsn(rows[0]?.current_lsn);
      if (current !== undefined) this.history.record(now, current);
      const replicas: ReplicaView[] = rows
        .filter((r) => r.application_name !== null)
        .map((r) => ({
          applicationName: r.application_name ?? "",
          clientAddr: r.client_addr ?? "",
          state: r.state ?? "",
          syncState: r.sync_state ?? "",
          writeLagSeconds: Math.max(r.write_lag_s ?? 0, this.history.lagSeconds(now, parseLsn(r.write_lsn)) ?? 0),
          replayLagSeconds: Math.max(r.replay_lag_s ?? 0, this.history.lagSeconds(now, parseLsn(r.replay_lsn)) ?? 0),
          replayLagBytes: Math.max(0, Number(r.replay_bytes ?? 0)),
        }));
      const maxWrite = Math.max(0, ...replicas.map((r) => r.writeLagSeconds));
      const maxReplay = Math.max(0, ...replicas.map((r) => r.replayLagSeconds));
      return {
        lagStatus: classifyLag(maxReplay, this.thresholds.warnSeconds, this.thresholds.criticalSeconds),
        maxWriteLagSeconds: maxWrite,
        maxReplayLagSeconds: maxReplay,
        replicaCount: replicas.length,
        syncReplicaCount: replicas.filter((r) => r.syncState === "sync" || r.syncState === "quorum").length,
        replicas,
        error: "",
      };
    } catch (err) {
      return { ...unknownReplication, error: describeError(err) };
    }
  }
}

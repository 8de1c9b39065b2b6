import type { AuditEvent, AuditQuery } from "./audit-event.js";
import { AuditType, DEFAULT_AUDIT_LIMIT } from "./audit-event.js";
import { filterAuditEvents } from "./audit-reader.js";
import type { SchemaName } from "../../db/identifiers.js";
import type { Queryable } from "../../db/side-connection.js";

/**
 * The audit kept in the lock database (audit_events, migration 7) beside each
 * coordinator's file: whichever coordinator is active writes it, and every
 * coordinator of the tier answers queries from it, so the history survives
 * the coordinator that wrote it.
 */
export class AuditStore {
  constructor(
    private readonly db: Queryable,
    private readonly schema: SchemaName,
  ) {}

  async write(event: AuditEvent): Promise<void> {
    await this.db.query(
      `INSERT INTO ${this.schema.q("audit_events")} (id, cluster_id, at, category, type, event) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (id) DO NOTHING`,
      [event.id, event.cluster_id, event.time, event.category, event.type, JSON.stringify(event)],
    );
  }

  /** The highest epoch a leader change of the cluster is recorded for (0 when none). */
  async highestLeaderChange(clusterId: string): Promise<number> {
    const r = await this.db.query<{ epoch: string }>(
      `SELECT coalesce(max((event->>'epoch')::bigint), 0) AS epoch FROM ${this.schema.q("audit_events")} WHERE cluster_id = $1 AND type = $2`,
      [clusterId, AuditType.LeaderChanged],
    );
    return Number(r.rows[0]!.epoch);
  }

  /** The newest `limit` matching events, oldest first (as the file reader answers). */
  async query(query: AuditQuery): Promise<AuditEvent[]> {
    const limit = query.limit && query.limit > 0 ? query.limit : DEFAULT_AUDIT_LIMIT;
    const r = await this.db.query<{ event: AuditEvent }>(
      `SELECT event FROM ${this.schema.q("audit_events")}
        WHERE ($1 = '' OR category = $1) AND ($2 = '' OR type = $2) AND ($3 = '' OR cluster_id = $3) AND ($4::timestamptz IS NULL OR at >= $4)
        ORDER BY seq DESC LIMIT $5`,
      [query.category ?? "", query.type ?? "", query.clusterId ?? "", query.since ?? null, limit],
    );
    return filterAuditEvents(r.rows.map((row) => row.event).reverse(), { ...query, limit });
  }
}

import type { ServerStanding } from "../core/authority.js";
import type { SchemaName } from "./identifiers.js";
import type { Queryable } from "./side-connection.js";

/** One server of the cluster as read directly: its standing, role, fence and epochs. */
export interface ServerReading extends ServerStanding {
  readonly inRecovery: boolean;
  /** Why this server is fenced as superseded (database_fence), or undefined. */
  readonly fenced: string | undefined;
  /** The highest epoch this server confirms for the cluster (state, terms, floor, stamps). */
  readonly confirmedEpoch: number;
  /** The latest promotion stamp's record, when the server has one. */
  readonly lastPromotion: PromotionRecord | undefined;
}

export interface PromotionRecord {
  readonly timeline: number;
  readonly stampedEpoch: number;
  readonly region: string;
  readonly actor: string;
  readonly reason: string;
  readonly automatic: boolean;
  readonly stampedAt: Date;
}

/** Reads a server's standing in one statement; works on a primary and on a standby. */
export async function readServerStanding(db: Queryable, s: SchemaName, clusterId: string): Promise<ServerReading> {
  const r = await db.query<{
    sysid: string;
    timeline: number;
    in_recovery: boolean;
    stamp: string;
    fenced: string | null;
    confirmed: string;
    p_timeline: number | null;
    p_epoch: string | null;
    p_region: string | null;
    p_actor: string | null;
    p_reason: string | null;
    p_automatic: boolean | null;
    p_at: Date | null;
  }>(
    `WITH id AS (SELECT system_identifier::text AS sysid FROM pg_control_system()),
          tl AS (SELECT ${s.q("current_timeline")}() AS v),
          last AS (SELECT pr.* FROM ${s.q("promotions")} pr, id, tl
                    WHERE pr.system_identifier = id.sysid AND pr.timeline <= tl.v
                    ORDER BY pr.timeline DESC, pr.stamped_epoch DESC LIMIT 1)
     SELECT id.sysid, tl.v AS timeline, pg_is_in_recovery() AS in_recovery,
            coalesce((SELECT max(pr.stamped_epoch) FROM ${s.q("promotions")} pr WHERE pr.system_identifier = id.sysid AND pr.timeline <= tl.v), 0) AS stamp,
            ${s.q("fence_reason")}() AS fenced,
            greatest((SELECT coalesce(max(epoch), 0) FROM ${s.q("leadership_state")} WHERE cluster_id = $1),
                     (SELECT coalesce(max(epoch), 0) FROM ${s.q("leader_epochs")} WHERE cluster_id = $1),
                     (SELECT coalesce(max(f.floor), 0) FROM ${s.q("epoch_floor")} f WHERE f.cluster_id = $1 AND f.system_identifier = id.sysid)) AS confirmed,
            last.timeline AS p_timeline, last.stamped_epoch AS p_epoch, last.region AS p_region, last.actor AS p_actor,
            last.reason AS p_reason, last.automatic AS p_automatic, last.stamped_at AS p_at
       FROM id CROSS JOIN tl LEFT JOIN last ON true`,
    [clusterId],
  );
  const row = r.rows[0]!;
  return {
    systemIdentifier: row.sysid,
    timeline: row.timeline,
    stamp: Number(row.stamp),
    inRecovery: row.in_recovery,
    fenced: row.fenced ?? undefined,
    confirmedEpoch: Number(row.confirmed),
    lastPromotion:
      row.p_timeline !== null
        ? {
            timeline: row.p_timeline,
            stampedEpoch: Number(row.p_epoch),
            region: row.p_region ?? "",
            actor: row.p_actor ?? "",
            reason: row.p_reason ?? "",
            automatic: row.p_automatic ?? false,
            stampedAt: row.p_at!,
          }
        : undefined,
  };
}

/**
 * Fences the server `db` is connected to, as superseded by `by`; the server
 * itself refuses when `by` is not ahead of it. Returns whether a fence was
 * written now (false: it was fenced already).
 */
export async function fenceSupersededServer(db: Queryable, s: SchemaName, by: ServerStanding, reason: string, fencedBy: string): Promise<boolean> {
  const r = await db.query<{ fenced: boolean }>(`SELECT ${s.q("fence_superseded")}($1, $2, $3, $4) AS fenced`, [by.timeline, by.stamp, reason, fencedBy]);
  return r.rows[0]!.fenced;
}

export interface StampResult {
  readonly stampedEpoch: number;
  readonly systemIdentifier: string;
  readonly timeline: number;
  /** Terms the stamp ended. */
  readonly closed: number[];
}

/** Seed 004 §3 on a promoted server: see stamp_promotion in migrations.ts. */
export async function stampPromotion(
  db: Queryable,
  s: SchemaName,
  clusterId: string,
  stamp: { region: string; actor: string; reason: string; atLeast: number },
): Promise<StampResult> {
  const r = await db.query<{ stamped_epoch: string; system_identifier: string; timeline: number; closed: string[] }>(
    `SELECT stamped_epoch, system_identifier, timeline, closed FROM ${s.q("stamp_promotion")}($1, $2, $3, $4, $5)`,
    [clusterId, stamp.region, stamp.actor, stamp.reason, stamp.atLeast],
  );
  const row = r.rows[0]!;
  return { stampedEpoch: Number(row.stamped_epoch), systemIdentifier: row.system_identifier, timeline: row.timeline, closed: row.closed.map(Number) };
}

import type { SchemaName } from "./identifiers.js";
import type { Queryable } from "./side-connection.js";

/** What the coordinator keeps in the database for a cluster (migrations 6 and 7). */
export interface CoordinatorState {
  readonly maintenance: boolean;
  readonly maintenanceBy: string;
  readonly maintenanceReason: string;
  readonly reconcileHold: boolean;
  readonly reconcileHoldBy: string;
  readonly reconcileHoldReason: string;
  /** How long ago the last automatic failover was ordered (the cooldown runs from it); undefined when never. */
  readonly lastAutomaticFailoverAgeMs: number | undefined;
  /** The successor the last active coordinator queued on the lock ("" when none), and how long ago. */
  readonly designatedSuccessor: string;
  readonly designatedAgeMs: number | undefined;
}

export const noCoordinatorState: CoordinatorState = {
  maintenance: false,
  maintenanceBy: "",
  maintenanceReason: "",
  reconcileHold: false,
  reconcileHoldBy: "",
  reconcileHoldReason: "",
  lastAutomaticFailoverAgeMs: undefined,
  designatedSuccessor: "",
  designatedAgeMs: undefined,
};

export async function readCoordinatorState(db: Queryable, s: SchemaName, clusterId: string): Promise<CoordinatorState> {
  return (await readCoordinatorStates(db, s, [clusterId])).get(clusterId)!;
}

/** The state of several clusters in one statement (a coordinator serving many reads all of them each second). */
export async function readCoordinatorStates(db: Queryable, s: SchemaName, clusterIds: readonly string[]): Promise<Map<string, CoordinatorState>> {
  const r = await db.query<{
    cluster_id: string;
    maintenance: boolean;
    maintenance_by: string;
    maintenance_reason: string;
    reconcile_hold: boolean;
    reconcile_hold_by: string;
    reconcile_hold_reason: string;
    failover_age_ms: number | null;
    designated_successor: string;
    designated_age_ms: number | null;
  }>(
    `SELECT cluster_id, maintenance, maintenance_by, maintenance_reason, reconcile_hold, reconcile_hold_by, reconcile_hold_reason,
            (extract(epoch FROM clock_timestamp() - last_automatic_failover_at) * 1000)::float8 AS failover_age_ms,
            designated_successor,
            (extract(epoch FROM clock_timestamp() - designated_at) * 1000)::float8 AS designated_age_ms
       FROM ${s.q("coordinator_state")} WHERE cluster_id = ANY($1::text[])`,
    [clusterIds],
  );
  const states = new Map<string, CoordinatorState>(clusterIds.map((id) => [id, noCoordinatorState]));
  for (const row of r.rows) {
    states.set(row.cluster_id, {
      maintenance: row.maintenance,
      maintenanceBy: row.maintenance_by,
      maintenanceReason: row.maintenance_reason,
      reconcileHold: row.reconcile_hold,
      reconcileHoldBy: row.reconcile_hold_by,
      reconcileHoldReason: row.reconcile_hold_reason,
      lastAutomaticFailoverAgeMs: row.failover_age_ms ?? undefined,
      designatedSuccessor: row.designated_successor,
      designatedAgeMs: row.designated_age_ms ?? undefined,
    });
  }
  return states;
}

/** One flag of the state with who set it and why, and when (the database's clock). */
type Recorded = "maintenance" | "reconcile_hold";

async function record(db: Queryable, s: SchemaName, clusterId: string, what: Recorded, on: boolean, by: string, reason: string): Promise<void> {
  await db.query(
    `INSERT INTO ${s.q("coordinator_state")} AS c (cluster_id, ${what}, ${what}_by, ${what}_reason, ${what}_at)
     VALUES ($1, $2, $3, $4, now())
     ON CONFLICT (cluster_id) DO UPDATE SET ${what} = excluded.${what}, ${what}_by = excluded.${what}_by,
       ${what}_reason = excluded.${what}_reason, ${what}_at = excluded.${what}_at`,
    [clusterId, on, by, reason],
  );
}

/** Records maintenance mode on or off, with who and why. */
export function writeMaintenance(db: Queryable, s: SchemaName, clusterId: string, on: boolean, by: string, reason: string): Promise<void> {
  return record(db, s, clusterId, "maintenance", on, by, reason);
}

/** Records the manual-reconcile hold on or off, with who and why. */
export function writeReconcileHold(db: Queryable, s: SchemaName, clusterId: string, on: boolean, by: string, reason: string): Promise<void> {
  return record(db, s, clusterId, "reconcile_hold", on, by, reason);
}

/** Records that an automatic failover was ordered now: the cooldown a later coordinator honours runs from here. */
export async function writeAutomaticFailover(db: Queryable, s: SchemaName, clusterId: string): Promise<void> {
  await db.query(
    `INSERT INTO ${s.q("coordinator_state")} AS c (cluster_id, last_automatic_failover_at) VALUES ($1, clock_timestamp())
     ON CONFLICT (cluster_id) DO UPDATE SET last_automatic_failover_at = excluded.last_automatic_failover_at`,
    [clusterId],
  );
}

/** Records the designated successor ("" when none is queued). */
export async function writeDesignation(db: Queryable, s: SchemaName, clusterId: string, nodeId: string): Promise<void> {
  await db.query(
    `INSERT INTO ${s.q("coordinator_state")} AS c (cluster_id, designated_successor, designated_at)
     VALUES ($1, $2, CASE WHEN $2 = '' THEN NULL ELSE clock_timestamp() END)
     ON CONFLICT (cluster_id) DO UPDATE SET designated_successor = excluded.designated_successor, designated_at = excluded.designated_at`,
    [clusterId, nodeId],
  );
}

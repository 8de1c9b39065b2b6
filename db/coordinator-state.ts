import type { SchemaName } from "./identifiers.js";
import type { Queryable } from "./side-connection.js";

/** What the coordinator keeps in the database for a cluster (migration 6). */
export interface CoordinatorState {
  readonly maintenance: boolean;
  readonly maintenanceBy: string;
  readonly maintenanceReason: string;
  readonly reconcileHold: boolean;
  readonly reconcileHoldBy: string;
  readonly reconcileHoldReason: string;
}

export const noCoordinatorState: CoordinatorState = {
  maintenance: false,
  maintenanceBy: "",
  maintenanceReason: "",
  reconcileHold: false,
  reconcileHoldBy: "",
  reconcileHoldReason: "",
};

export async function readCoordinatorState(db: Queryable, s: SchemaName, clusterId: string): Promise<CoordinatorState> {
  const r = await db.query<{ maintenance: boolean; maintenance_by: string; maintenance_reason: string; reconcile_hold: boolean; reconcile_hold_by: string; reconcile_hold_reason: string }>(
    `SELECT maintenance, maintenance_by, maintenance_reason, reconcile_hold, reconcile_hold_by, reconcile_hold_reason
       FROM ${s.q("coordinator_state")} WHERE cluster_id = $1`,
    [clusterId],
  );
  const row = r.rows[0];
  if (!row) return noCoordinatorState;
  return {
    maintenance: row.maintenance,
    maintenanceBy: row.maintenance_by,
    maintenanceReason: row.maintenance_reason,
    reconcileHold: row.reconcile_hold,
    reconcileHoldBy: row.reconcile_hold_by,
    reconcileHoldReason: row.reconcile_hold_reason,
  };
}

/** Records maintenance mode on or off, with who and why. */
export async function writeMaintenance(db: Queryable, s: SchemaName, clusterId: string, on: boolean, by: string, reason: string): Promise<void> {
  await db.query(
    `INSERT INTO ${s.q("coordinator_state")} AS c (cluster_id, maintenance, maintenance_by, maintenance_reason, maintenance_at)
     VALUES ($1, $2, $3, $4, now())
     ON CONFLICT (cluster_id) DO UPDATE SET maintenance = excluded.maintenance, maintenance_by = excluded.maintenance_by,
       maintenance_reason = excluded.maintenance_reason, maintenance_at = excluded.maintenance_at`,
    [clusterId, on, by, reason],
  );
}

/** Records the manual-reconcile hold on or off, with who and why. */
export async function writeReconcileHold(db: Queryable, s: SchemaName, clusterId: string, on: boolean, by: string, reason: string): Promise<void> {
  await db.query(
    `INSERT INTO ${s.q("coordinator_state")} AS c (cluster_id, reconcile_hold, reconcile_hold_by, reconcile_hold_reason, reconcile_hold_at)
     VALUES ($1, $2, $3, $4, now())
     ON CONFLICT (cluster_id) DO UPDATE SET reconcile_hold = excluded.reconcile_hold, reconcile_hold_by = excluded.reconcile_hold_by,
       reconcile_hold_reason = excluded.reconcile_hold_reason, reconcile_hold_at = excluded.reconcile_hold_at`,
    [clusterId, on, by, reason],
  );
}

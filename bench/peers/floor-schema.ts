import { WRITES_TABLE, type WriteStatements } from "./write-loop.js";

/** The floor's advisory lock and its one-row term table (see floor-candidate.ts). */
export const FLOOR_LOCK_KEY = 7_310_001;
export const FLOOR_TERM_TABLE = "floor_term";
export const CREATE_FLOOR_TERM = `CREATE TABLE IF NOT EXISTS ${FLOOR_TERM_TABLE} (id int PRIMARY KEY, epoch bigint NOT NULL, holder text); INSERT INTO ${FLOOR_TERM_TABLE} VALUES (1, 0, NULL) ON CONFLICT DO NOTHING`;

/**
 * The floor's fenced write: the epoch checked under a share lock in the
 * write's own transaction, so a new term's UPDATE waits for it and a stale
 * term's write fails.
 */
export const floorFencedWrite: WriteStatements = async (client, node, epoch) => {
  await client.query("BEGIN");
  try {
    const r = await client.query<{ epoch: string }>(`SELECT epoch FROM ${FLOOR_TERM_TABLE} WHERE id = 1 FOR SHARE`);
    if (Number(r.rows[0]!.epoch) !== epoch) throw new Error(`stale epoch ${epoch}, current ${r.rows[0]!.epoch}`);
    await client.query(`INSERT INTO ${WRITES_TABLE} (node, epoch) VALUES ($1, $2)`, [node, epoch]);
    await client.query("COMMIT");
  } catch (err) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw err;
  }
};

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { waitFor } from "../../core/clock.js";
import { startPgCluster, type PgCluster } from "../../pgcluster/index.js";
import { LOCK_CLASS_ID, SchemaName } from "../../db/identifiers.js";
import { MAX_EPOCH_JUMP, openEpoch, raiseEpochFloor, readConfirmedEpoch, readDatabaseIdentity, readEpochs, readLeadership } from "../../db/leadership.js";
import { migrate } from "../../db/migrations.js";

/** The database's own guards on epochs: what assert_epoch tells a stranger, bounded floors, the stored floor. */
describe("epoch guards in the database", () => {
  let cluster: PgCluster;
  const schema = new SchemaName("floors");
  let db: pg.Client;

  const leaderOf = async (clusterId: string, holder: string) => {
    const c = new pg.Client({ connectionString: cluster.primary.url(), application_name: holder });
    await c.connect();
    await c.query("SELECT pg_advisory_lock($1, hashtext($2))", [LOCK_CLASS_ID, clusterId]);
    return c;
  };
  const snapshot = async (clusterId: string) => ({
    state: await readLeadership(db, schema, clusterId),
    epochs: await readEpochs(db, schema, clusterId),
    floor: await db.query("SELECT cluster_id, system_identifier, floor FROM floors.epoch_floor WHERE cluster_id = $1", [clusterId]).then((r) => r.rows),
  });

  beforeAll(async () => {
    cluster = await startPgCluster({ standbys: 1 });
    db = new pg.Client({ connectionString: cluster.primary.url() });
    await db.connect();
    await migrate(db, schema);
  });
  afterAll(async () => {
    await db?.end();
    await cluster?.close();
  });

  it("assert_epoch names no holder, for its own cluster or any other, and keeps AH001 with the current epoch", async () => {
    const leader = await leaderOf("secretive", "cp-node-hidden");
    try {
      const { epoch } = await openEpoch(leader, schema, "secretive", "cp-node-hidden", 0);
      for (const [args, current] of [
        [[0, "secretive"], epoch],
        [[epoch + 1, "secretive"], epoch],
        [[0, "other-cluster"], 0],
      ] as const) {
        const err = await db.query("SELECT floors.assert_epoch($1, $2)", [...args]).then(
          () => undefined,
          (e: unknown) => e as { code: string; message: string },
        );
        expect(err?.code).toBe("AH001");
        expect(err?.message).toMatch(new RegExp(`^stale epoch ${args[0]}: current epoch of cluster ${args[1]} is ${current}`));
        expect(err?.message).not.toMatch(/cp-node-hidden|holder/);
      }
      expect((await db.query("SELECT floors.assert_epoch($1, 'secretive') AS e", [epoch])).rows[0].e).toBe(String(epoch));
    } finally {
      await leader.end();
    }
  });

  it(`open_epoch refuses a floor more than ${MAX_EPOCH_JUMP} above what the database confirms (AH003), and nothing changes`, async () => {
    const leader = await leaderOf("bounded", "cp-node-1");
    try {
      const { epoch } = await openEpoch(leader, schema, "bounded", "cp-node-1", 0);
      const before = await snapshot("bounded");
      for (const floor of [epoch + MAX_EPOCH_JUMP + 1, 2 ** 53 - 1, Number.MAX_SAFE_INTEGER]) {
        const err = await openEpoch(leader, schema, "bounded", "cp-node-1", floor).then(
          () => undefined,
          (e: unknown) => e as { code: string; message: string },
        );
        expect(err?.code).toBe("AH003");
        expect(err?.message).toBe(
          `open_epoch: floor ${floor} is more than ${MAX_EPOCH_JUMP} above epoch ${epoch}, the highest epoch this database confirms for cluster bounded; refused`,
        );
      }
      // Beyond bigint, PostgreSQL itself refuses the argument.
      await expect(leader.query("SELECT * FROM floors.open_epoch('bounded', 'cp-node-1', $1)", ["18446744073709551615"])).rejects.toMatchObject({ code: "22003" });
      expect(await snapshot("bounded")).toEqual(before);
      // The bound itself is allowed: a database failover may lose a few terms.
      expect((await openEpoch(leader, schema, "bounded", "cp-node-1", epoch + MAX_EPOCH_JUMP)).epoch).toBe(epoch + MAX_EPOCH_JUMP + 1);
    } finally {
      await leader.end();
    }
  });

  it("epoch_floor is only raised, only on its own server, within the bound; open_epoch opens above it and a standby carries it", async () => {
    const id = await readDatabaseIdentity(db);
    expect(await readConfirmedEpoch(db, schema, "kept")).toEqual({ systemIdentifier: id.systemIdentifier, storedFloor: 0, confirmed: 0 });

    expect(await raiseEpochFloor(db, schema, "kept", id.systemIdentifier, 40)).toBe(40);
    expect(await raiseEpochFloor(db, schema, "kept", id.systemIdentifier, 12)).toBe(40);
    // Another server's identity, or a jump past the bound: nothing written.
    expect(await raiseEpochFloor(db, schema, "kept", "1234567890", 41)).toBeUndefined();
    expect(await raiseEpochFloor(db, schema, "kept", id.systemIdentifier, 40 + MAX_EPOCH_JUMP + 1)).toBeUndefined();
    expect(await readConfirmedEpoch(db, schema, "kept")).toEqual({ systemIdentifier: id.systemIdentifier, storedFloor: 40, confirmed: 40 });
    // A row kept for another server does not count here.
    await db.query("INSERT INTO floors.epoch_floor (cluster_id, system_identifier, floor) VALUES ('kept', '1234567890', 900)");
    expect((await readConfirmedEpoch(db, schema, "kept")).confirmed).toBe(40);

    const leader = await leaderOf("kept", "cp-node-3");
    try {
      expect((await openEpoch(leader, schema, "kept", "cp-node-3", 0)).epoch).toBe(41);
    } finally {
      await leader.end();
    }

    const standby = new pg.Client({ connectionString: cluster.standby.url() });
    await standby.connect();
    try {
      const row = await waitFor(
        async () => (await standby.query("SELECT floor FROM floors.epoch_floor WHERE cluster_id = 'kept' AND system_identifier = $1", [id.systemIdentifier])).rows[0],
        { timeoutMs: 10_000, what: "the floor replicated to the standby" },
      );
      expect(row).toEqual({ floor: "40" });
      expect((await readDatabaseIdentity(standby)).systemIdentifier).toBe(id.systemIdentifier);
    } finally {
      await standby.end();
    }
  });
});

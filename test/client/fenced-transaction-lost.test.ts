import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { fencedTransaction } from "../../client/index.js";
import { LOCK_CLASS_ID, SchemaName } from "../../db/identifiers.js";
import { openEpoch } from "../../db/leadership.js";
import { migrate } from "../../db/migrations.js";
import { startPgCluster, type PgCluster } from "../../pgcluster/index.js";

/**
 * A connection lost in the middle of a fenced transaction (the server ended
 * it, as a dying or fenced primary does): fencedTransaction rejects with the
 * error, the pool drops that connection instead of handing it out again, and
 * nothing is left to crash the process (a checked-out client's 'error' has no
 * pool listener).
 */
describe("fencedTransaction when the connection is lost mid-transaction", () => {
  let cluster: PgCluster;
  let leader: pg.Client;
  let admin: pg.Client;
  let pool: pg.Pool;
  let epoch: number;

  beforeAll(async () => {
    cluster = await startPgCluster({ standbys: 0 });
    admin = new pg.Client({ connectionString: cluster.primary.url() });
    await admin.connect();
    await migrate(admin, new SchemaName("public"));
    await admin.query("CREATE TABLE fenced_lost (epoch bigint)");
    leader = new pg.Client({ connectionString: cluster.primary.url(), application_name: "cp-node-1" });
    await leader.connect();
    await leader.query("SELECT pg_advisory_lock($1, hashtext('default'))", [LOCK_CLASS_ID]);
    epoch = (await openEpoch(leader, new SchemaName("public"), "default", "cp-node-1", 0)).epoch;
    pool = new pg.Pool({ connectionString: cluster.primary.url(), max: 1 });
    pool.on("error", () => undefined);
  });
  afterAll(async () => {
    await pool?.end();
    await Promise.all([leader?.end(), admin?.end()]);
    await cluster?.close();
  });

  it("rejects, drops the connection and leaves no row; the next transaction works", async () => {
    const lost = await fencedTransaction(pool, epoch, async (c) => {
      const pid = (await c.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
      await c.query("INSERT INTO fenced_lost (epoch) VALUES ($1)", [epoch]);
      await admin.query("SELECT pg_terminate_backend($1)", [pid]);
      await c.query("SELECT 1");
    }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    // The server's own message, or node-postgres's once it saw the connection fail first.
    expect(lost?.message).toMatch(/terminat|connection error/i);
    expect((await admin.query("SELECT count(*)::int AS n FROM fenced_lost")).rows[0].n).toBe(0);
    // The pool (max 1) gives a fresh connection, not the dead one.
    await fencedTransaction(pool, epoch, (c) => c.query("INSERT INTO fenced_lost (epoch) VALUES ($1)", [epoch]));
    expect((await admin.query("SELECT count(*)::int AS n FROM fenced_lost")).rows[0].n).toBe(1);
  });
});

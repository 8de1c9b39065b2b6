import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { startPgCluster, type PgCluster } from "../../pgcluster/index.js";
import { connectDatabase, parseDatabaseUrl } from "../../db/connect.js";
import { LOCK_CLASS_ID, SchemaName } from "../../db/identifiers.js";
import { LATEST_SCHEMA_VERSION, migrate } from "../../db/migrations.js";
import { openEpoch } from "../../db/leadership.js";

describe("schema migrations and database connections", () => {
  let cluster: PgCluster;

  beforeAll(async () => {
    cluster = await startPgCluster({ standbys: 1 });
  });
  afterAll(async () => {
    await cluster?.close();
  });

  const client = async (url = cluster.primary.url()) => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    return c;
  };

  it("two agents migrating at once apply each version exactly once, into their own schema", async () => {
    const schema = new SchemaName("autonomy_ha");
    const clients = await Promise.all([client(), client(), client()]);
    try {
      const results = await Promise.all(clients.map((c) => migrate(c, schema)));
      expect(results.flatMap((r) => r.applied).sort()).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      expect(results.every((r) => r.version === LATEST_SCHEMA_VERSION)).toBe(true);
      expect((await migrate(clients[0]!, schema)).applied).toEqual([]);
      const tables = await cluster.primary.query<{ table_name: string }>(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'autonomy_ha' ORDER BY 1",
      );
      expect(tables.map((t) => t.table_name)).toEqual(["audit_events", "autonomy_schema_migrations", "coordinator_requests", "coordinator_state", "coordinator_term", "database_fence", "epoch_floor", "leader_epochs", "leadership_state", "promotions"]);
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });

  it("open_epoch refuses a session that does not hold the leader lock", async () => {
    const schema = new SchemaName("public");
    const c = await client();
    try {
      await migrate(c, schema);
      await expect(openEpoch(c, schema, "default", "intruder", 0)).rejects.toMatchObject({ code: "AH002" });
      await c.query("SELECT pg_advisory_lock($1, hashtext('default'))", [LOCK_CLASS_ID]);
      expect((await openEpoch(c, schema, "default", "cp-node-9", 41)).epoch).toBe(42);
      // The floor only ever raises the epoch: the next one is max + 1.
      expect((await openEpoch(c, schema, "default", "cp-node-9", 3)).epoch).toBe(43);
      const rows = await c.query("SELECT epoch, end_reason FROM leader_epochs WHERE cluster_id = 'default' ORDER BY epoch");
      expect(rows.rows).toEqual([
        { epoch: "42", end_reason: "superseded" },
        { epoch: "43", end_reason: null },
      ]);
    } finally {
      await c.end();
    }
  });

  it("a multi-host URL with target_session_attrs=read-write lands on the primary", async () => {
    const url = `postgres://postgres@127.0.0.1:${cluster.standby.port},127.0.0.1:${cluster.primary.port}/postgres?target_session_attrs=read-write`;
    const target = parseDatabaseUrl(url);
    expect(target.hosts).toEqual([`127.0.0.1:${cluster.standby.port}`, `127.0.0.1:${cluster.primary.port}`]);
    const c = await connectDatabase(target, { applicationName: "test", connectTimeoutMs: 2_000 }, () => undefined);
    try {
      const r = await c.query<{ in_recovery: boolean }>("SELECT pg_is_in_recovery() AS in_recovery");
      expect(r.rows[0]?.in_recovery).toBe(false);
    } finally {
      await c.end();
    }
    const standbyOnly = parseDatabaseUrl(`postgres://postgres@127.0.0.1:${cluster.standby.port}/postgres?target_session_attrs=read-write`);
    await expect(connectDatabase(standbyOnly, { applicationName: "test", connectTimeoutMs: 2_000 }, () => undefined)).rejects.toThrow(
      /target_session_attrs=read-write: 127\.0\.0\.1:\d+: is a standby \(in recovery\)/,
    );
  });

  it.each([
    ["mysql://x@h/db", /must look like postgres:\/\//],
    ["postgres://u:secret@/db", /names no host/],
    ["postgres://u@h:1/db?target_session_attrs=sometimes", /target_session_attrs=sometimes is not one of/],
  ])("refuses the database URL %s with a clear message", (url, message) => {
    expect(() => parseDatabaseUrl(url)).toThrow(message);
  });

  it("never prints a password in a URL error", () => {
    expect(() => parseDatabaseUrl("postgres://u:hunter2@/db")).toThrow(/u:\*\*\*@/);
  });
});

describe("assert_epoch for an application role", () => {
  let cluster: PgCluster;
  beforeAll(async () => {
    cluster = await startPgCluster({ standbys: 0 });
  });
  afterAll(async () => {
    await cluster?.close();
  });

  it("needs only EXECUTE, and rejects a stale epoch with SQLSTATE AH001 inside the application's transaction", async () => {
    const admin = new pg.Client({ connectionString: cluster.primary.url() });
    await admin.connect();
    try {
      await migrate(admin, new SchemaName("public"));
      await admin.query("SELECT pg_advisory_lock($1, hashtext('default'))", [LOCK_CLASS_ID]);
      const { epoch } = await openEpoch(admin, new SchemaName("public"), "default", "cp-node-1", 0);
      await admin.query("CREATE ROLE app LOGIN; CREATE TABLE decisions (epoch bigint, what text); GRANT INSERT ON decisions TO app");
      const app = new pg.Client({ connectionString: cluster.primary.url("postgres").replace("postgres@", "app@") });
      await app.connect();
      try {
        await app.query("BEGIN");
        await app.query("SELECT assert_epoch($1)", [epoch]);
        await app.query("INSERT INTO decisions VALUES ($1, 'fenced')", [epoch]);
        await app.query("COMMIT");
        await app.query("BEGIN");
        await expect(app.query("SELECT assert_epoch($1)", [epoch - 1])).rejects.toMatchObject({ code: "AH001" });
        await app.query("ROLLBACK");
        expect((await admin.query("SELECT count(*)::int AS n FROM decisions")).rows[0]).toEqual({ n: 1 });
      } finally {
        await app.end();
      }
    } finally {
      await admin.end();
    }
  });
});

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { startPgCluster, type PgCluster } from "../../pgcluster/index.js";
import { LockSession } from "../../agent/election/lock-session.js";
import { parseDatabaseUrl } from "../../db/connect.js";
import { LOCK_CLASS_ID, SchemaName } from "../../db/identifiers.js";
import { migrate } from "../../db/migrations.js";
import { SideConnection } from "../../db/side-connection.js";
import { cancelLockWait } from "../../db/leadership.js";

/** A wait on the lock ends when it is aborted, wherever the abort lands, and the session survives it. */
describe("waiting on the leader lock", () => {
  let cluster: PgCluster;
  let holder: pg.Client;
  let side: SideConnection;
  let session: LockSession;

  beforeAll(async () => {
    cluster = await startPgCluster({ standbys: 0 });
    holder = new pg.Client({ connectionString: cluster.primary.url() });
    await holder.connect();
    await migrate(holder, new SchemaName("public"));
    await holder.query("SELECT pg_advisory_lock($1, hashtext('default'))", [LOCK_CLASS_ID]);
    const target = parseDatabaseUrl(cluster.primary.url());
    side = new SideConnection(target, { applicationName: "test/side", connectTimeoutMs: 2_000 });
    session = await LockSession.open({
      target,
      nodeId: "cp-node-9",
      clusterId: "default",
      schema: new SchemaName("public"),
      connectTimeoutMs: 2_000,
      statementLockTimeoutMs: 1_000,
      cancel: (pid) => cancelLockWait(side.db, pid),
    });
  });
  afterAll(async () => {
    await session?.close();
    await side?.close();
    await holder?.end();
    await cluster?.close();
  });

  it.each([
    ["at once, before the wait has begun", 0],
    ["while the backend waits", 100],
  ])("an abort %s ends a 60 s wait and leaves the session usable", async (_when, delayMs) => {
    const abort = new AbortController();
    const waited = session.waitLock(60_000, abort.signal);
    if (delayMs === 0) abort.abort();
    else setTimeout(() => abort.abort(), delayMs);
    expect(await waited).toBe(false);
    expect(session.alive).toBe(true);
    expect(await session.tryLock()).toBe(false);
  });

  it("a wait is granted the moment the holder lets go", async () => {
    const waited = session.waitLock(60_000, new AbortController().signal);
    await holder.query("SELECT pg_advisory_unlock($1, hashtext('default'))", [LOCK_CLASS_ID]);
    expect(await waited).toBe(true);
  });
});

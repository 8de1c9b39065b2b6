import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { startPgCluster, type PgCluster } from "../../pgcluster/index.js";
import { TransactionPooler } from "../support/transaction-pooler.js";
import { spawnAutonomy } from "../support/processes.js";

describe("an agent behind a transaction-mode pooler", () => {
  let cluster: PgCluster;
  let pooler: TransactionPooler;

  beforeAll(async () => {
    cluster = await startPgCluster({ standbys: 0 });
    pooler = new TransactionPooler({ host: "127.0.0.1", port: cluster.primary.port, user: "postgres", database: "postgres" });
    await pooler.start();
  });
  afterAll(async () => {
    await pooler?.close();
    await cluster?.close();
  });

  it("refuses to run, saying why, and leaves no lock behind", async () => {
    // The pooler really pools: one client's consecutive statements run on different backends.
    const c = new pg.Client({ connectionString: pooler.url() });
    await c.connect();
    const pids = [];
    for (let i = 0; i < 3; i++) pids.push((await c.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid);
    await c.end();
    expect(new Set(pids).size).toBe(3);

    const agent = spawnAutonomy("pooled", ["agent", "--node-id", "cp-node-1", "--database-url", pooler.url(), "--listen", "127.0.0.1:0"]);
    expect(await agent.waitExit()).toBe(1);
    const output = agent.output.join("\n");
    expect(output).toMatch(/the lock session's backend changed between statements \(pid \d+, then \d+\): --database-url goes through a transaction-mode pooler/);
    expect(output).toMatch(/point it at PostgreSQL directly or at a session-mode pool/);
    expect(await cluster.primary.query("SELECT 1 FROM pg_locks WHERE locktype = 'advisory'")).toHaveLength(0);
  });
});

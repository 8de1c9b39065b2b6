import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { startPgCluster, type PgCluster } from "../../pgcluster/index.js";
import { waitFor } from "../../core/clock.js";
import { AgentProcess, writeReadyAgents } from "../support/agents.js";

/**
 * The fence between terms: a write fenced with epoch N commits before epoch
 * N+1 opens, and a new leader is not held off forever by a transaction that
 * stays open on the old epoch.
 */
describe("the epoch fence between two terms", () => {
  let cluster: PgCluster;
  const agents: AgentProcess[] = [];

  beforeAll(async () => {
    cluster = await startPgCluster({ standbys: 0 });
  });
  afterAll(async () => {
    await Promise.all(agents.map((a) => a.process.stop()));
    await cluster?.close();
  });

  it("a new term waits for the old term's open fenced write, then opens as epoch+1 and rejects the old epoch", async () => {
    agents.push(
      await AgentProcess.start({ nodeId: "cp-node-1", databaseUrl: cluster.primary.url() }),
      await AgentProcess.start({ nodeId: "cp-node-2", databaseUrl: cluster.primary.url() }),
    );
    const first = await waitFor(async () => (await writeReadyAgents(agents))[0], { timeoutMs: 10_000, what: "a leader" });
    const other = agents.find((a) => a !== first)!;

    // The old leader's application is in the middle of a fenced write.
    const app = new pg.Client({ connectionString: cluster.primary.url() });
    await app.connect();
    await app.query("CREATE TABLE IF NOT EXISTS fenced (epoch bigint, what text)");
    await app.query("BEGIN");
    await app.query("SELECT assert_epoch(1)");
    await app.query("INSERT INTO fenced VALUES (1, 'in flight when the leader died')");

    await first.process.kill();
    // The successor holds the lock but cannot open epoch 2 while the epoch-1 write is open.
    await waitFor(
      async () =>
        (
          await cluster.primary.query(
            "SELECT 1 FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = $1",
            [other.nodeId],
          )
        ).length === 1,
      { timeoutMs: 10_000, what: "the successor to take the lock" },
    );
    expect((await other.writeReady())?.ready).toBe(false);
    expect((await cluster.primary.query<{ epoch: string }>("SELECT epoch FROM leadership_state"))[0]?.epoch).toBe("1");

    await app.query("COMMIT");
    await waitFor(async () => (await other.writeReady())?.ready, { timeoutMs: 15_000, what: "the successor to open epoch 2" });
    expect(await cluster.primary.query("SELECT epoch, what FROM fenced")).toEqual([{ epoch: "1", what: "in flight when the leader died" }]);
    await app.query("BEGIN");
    await expect(app.query("SELECT assert_epoch(1)")).rejects.toMatchObject({ code: "AH001" });
    await app.query("ROLLBACK");
    await app.end();
    const rows = await cluster.primary.query<{ epoch: string; end_reason: string | null }>("SELECT epoch, end_reason FROM leader_epochs ORDER BY epoch");
    expect(rows).toEqual([
      { epoch: "1", end_reason: "superseded" },
      { epoch: "2", end_reason: null },
    ]);
  });
});

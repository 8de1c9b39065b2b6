import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { startPgCluster, type PgCluster } from "../../pgcluster/index.js";
import { waitFor } from "../../core/clock.js";
import { getJson } from "../support/processes.js";
import { AgentProcess, writeReadyAgents } from "../support/agents.js";
import { TcpProxy } from "../support/tcp-proxy.js";

/**
 * A leader cut off from the database by a silent partition (no FIN, no RST):
 * it fences itself at its lease, the other node takes over only after its
 * takeover delay, and at no sampled instant are both Write-Ready.
 */
describe("a partitioned leader", () => {
  let cluster: PgCluster;
  let proxy: TcpProxy;
  const agents: AgentProcess[] = [];

  beforeAll(async () => {
    cluster = await startPgCluster({ standbys: 0 });
    proxy = new TcpProxy("127.0.0.1", cluster.primary.port);
    await proxy.start();
  });
  afterAll(async () => {
    await Promise.all(agents.map((a) => a.process.stop()));
    await proxy?.close();
    await cluster?.close();
  });

  it("fences itself within its lease and is replaced, never overlapping the new leader", async () => {
    const timing = ["--takeover-after", "3s", "--connect-timeout", "1s"];
    const cut = await AgentProcess.start({ nodeId: "cp-node-1", databaseUrl: `postgres://postgres@127.0.0.1:${proxy.port}/postgres`, args: timing });
    agents.push(cut);
    await waitFor(async () => (await cut.writeReady())?.ready, { timeoutMs: 10_000, what: "cp-node-1 to lead" });
    const other = await AgentProcess.start({ nodeId: "cp-node-2", databaseUrl: cluster.primary.url(), args: timing });
    agents.push(other);

    // Sample both nodes' Write-Ready continuously from the partition on.
    let sampling = true;
    let overlaps = 0;
    let samples = 0;
    const sampler = (async () => {
      while (sampling) {
        const ready = await writeReadyAgents(agents);
        samples++;
        if (ready.length > 1) overlaps++;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();

    proxy.partition();
    await waitFor(async () => (await cut.writeReady())?.ready === false, { timeoutMs: 5_000, intervalMs: 20, what: "cp-node-1 to fence itself" });
    await waitFor(async () => (await other.writeReady())?.ready, { timeoutMs: 15_000, what: "cp-node-2 to take over" });
    proxy.heal();
    await waitFor(async () => (await cut.leader())?.holder_id === "cp-node-2", { timeoutMs: 15_000, what: "cp-node-1 to see the new leader" });
    sampling = false;
    await sampler;

    expect(samples).toBeGreaterThan(20);
    expect(overlaps).toBe(0);
    // Seed 000 §4's form answers 200 with the verdict; the load-balancer form answers 503.
    expect(await cut.writeReady()).toEqual({ status: 200, ready: false });
    expect((await getJson(`${cut.url}/v1/health/primary`))?.status).toBe(503);
    const rows = await cluster.primary.query<{ epoch: string; holder_id: string; end_reason: string | null }>(
      "SELECT epoch, holder_id, end_reason FROM leader_epochs ORDER BY epoch",
    );
    expect(rows.map((r) => [Number(r.epoch), r.holder_id, r.end_reason])).toEqual([
      [1, "cp-node-1", "superseded"],
      [2, "cp-node-2", null],
    ]);
    // cp-node-1's application, writing with the epoch it held, is fenced off.
    const app = new pg.Client({ connectionString: cluster.primary.url() });
    await app.connect();
    try {
      await expect(app.query("SELECT assert_epoch(1)")).rejects.toMatchObject({ code: "AH001" });
    } finally {
      await app.end();
    }
  });
});

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../core/clock.js";
import { startPgCluster, type PgCluster } from "../../pgcluster/index.js";
import { AgentProcess, writeReadyAgents } from "../support/agents.js";
import { ServerClients, termsOn } from "../support/servers.js";

/**
 * Promotion after lost rows, with agents and no coordinator: the async
 * standby is down while the primary opens more terms, then the primary is
 * lost and the standby promoted without those rows. The agents remember the
 * highest epoch any server showed them, so the first term on the promoted
 * server is above every epoch the old primary ever recorded, and it is
 * stamped as the promotion.
 */
describe("a promotion that lost the newest terms", () => {
  let cluster: PgCluster;
  const agents: AgentProcess[] = [];
  const servers = new ServerClients();

  beforeAll(async () => {
    cluster = await startPgCluster({ standbys: 1 });
  });
  afterAll(async () => {
    await Promise.all(agents.map((a) => a.process.stop()));
    await servers.closeAll();
    await cluster?.close();
  });

  it("opens the first term on the promoted server above every epoch of the lost primary", async () => {
    const [p, s] = [cluster.primary, cluster.standby];
    const url = `postgres://postgres@${p.host}:${p.port},${s.host}:${s.port}/postgres?target_session_attrs=read-write`;
    for (const nodeId of ["cp-node-1", "cp-node-2"]) agents.push(await AgentProcess.start({ nodeId, databaseUrl: url }));
    const leader = async () => waitFor(async () => (await writeReadyAgents(agents))[0], { timeoutMs: 20_000, what: "a Write-Ready leader" });
    await leader();
    await s.waitForStreaming();

    // The standby goes away; the primary opens three more terms it never receives.
    await s.stop("fast");
    const primary = await servers.open(p.url());
    for (let i = 0; i < 3; i++) {
      const before = (await leader()).nodeId;
      const epoch = Math.max(...(await termsOn(primary)).map((t) => t.epoch));
      await primary.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", [before]);
      await waitFor(async () => Math.max(...(await termsOn(primary)).map((t) => t.epoch)) > epoch && (await writeReadyAgents(agents)).length === 1, {
        timeoutMs: 20_000,
        what: `a term above epoch ${epoch}`,
      });
    }
    const lostMax = Math.max(...(await termsOn(primary)).map((t) => t.epoch));
    // The claim is about epochs the agents saw: a follower that had not yet read
    // the newest term could not know it, whoever wins on the promoted server.
    await waitFor(async () => (await Promise.all(agents.map((a) => a.highestEpochSeen()))).every((e) => e === lostMax), {
      timeoutMs: 10_000,
      what: `every agent to have seen epoch ${lostMax}`,
    });

    // The primary is lost; the standby comes up alone and is promoted.
    await p.kill("SIGKILL");
    await s.start();
    const promotedRows = await servers.open(s.url());
    const keptMax = Math.max(...(await termsOn(promotedRows)).map((t) => t.epoch));
    expect(keptMax).toBeLessThan(lostMax); // the rows of the newest terms are gone
    await s.promote();

    // A term the standby kept may still show open (its close was among the lost rows): wait for a new one.
    await waitFor(async () => (await termsOn(promotedRows)).some((t) => t.open && t.epoch > keptMax), { timeoutMs: 30_000, what: `a new term above epoch ${keptMax} on the promoted server` });
    const first = (await termsOn(promotedRows)).filter((t) => t.epoch > keptMax);
    expect(first.length).toBeGreaterThan(0);
    expect(Math.min(...first.map((t) => t.epoch))).toBeGreaterThan(lostMax);
    const stamp = await promotedRows.query<{ stamped_epoch: string; automatic: boolean }>("SELECT stamped_epoch, automatic FROM promotions");
    expect(stamp.rows).toEqual([{ stamped_epoch: String(Math.min(...first.map((t) => t.epoch))), automatic: true }]);
  });
});

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../core/clock.js";
import { startPgCluster, type PgCluster } from "../../pgcluster/index.js";
import { ServerClients, termsOn } from "../support/servers.js";
import { AgentProcess } from "../support/agents.js";
import { getJson, spawnAutonomy, type AutonomyProcess } from "../support/processes.js";
import { FAST_TIMINGS } from "../support/agents.js";


/**
 * A standby promoted while the old primary keeps running (a partition, a
 * zombie), with agents and no coordinator. The agent that led on the old
 * primary sees the promoted server through its multi-host URL, resigns,
 * fences the old primary and leads on the promoted one above every earlier
 * epoch; an agent that can reach only the old primary refuses to lead and says
 * why; the old primary's assert_epoch refuses every epoch.
 */
describe("an agent on a superseded primary", () => {
  let cluster: PgCluster;
  const agents: AgentProcess[] = [];
  const others: AutonomyProcess[] = [];
  const servers = new ServerClients();

  const db = (url: string) => servers.open(url);
  const terms = termsOn;

  beforeAll(async () => {
    cluster = await startPgCluster({ standbys: 1 });
  });
  afterAll(async () => {
    await Promise.all([...agents.map((a) => a.process.stop()), ...others.map((p) => p.stop())]);
    await servers.closeAll();
    await cluster?.close();
  });

  it("resigns there, fences it, and leads on the promoted server above every earlier epoch; an agent that reaches only the zombie refuses to lead", async () => {
    const [p, s] = [cluster.primary, cluster.standby];
    const both = `postgres://postgres@${p.host}:${p.port},${s.host}:${s.port}/postgres?target_session_attrs=read-write`;
    const a = await AgentProcess.start({ nodeId: "cp-node-1", databaseUrl: both, args: ["--region", "eu-west-1"] });
    agents.push(a);
    await waitFor(async () => (await a.writeReady())?.ready, { timeoutMs: 15_000, what: "cp-node-1 to lead on the primary" });
    // A few terms on the old primary, so its epochs run ahead.
    const oldPrimary = await db(p.url());
    const before = (await a.leader())!.current_epoch;
    expect(before).toBeGreaterThan(0);

    // Promote the standby while the primary keeps running.
    await s.promote();
    const promoted = await db(s.url());

    await waitFor(
      async () => {
        const rows = await terms(promoted);
        return rows.some((t) => t.open && t.holder_id === "cp-node-1" && t.epoch > before) && (await a.writeReady())?.ready;
      },
      { timeoutMs: 20_000, intervalMs: 50, what: "cp-node-1 to lead on the promoted server" },
    );

    // The old primary: every term closed, fenced, and assert_epoch refuses every epoch.
    const zombieTerms = await terms(oldPrimary);
    expect(zombieTerms.filter((t) => t.open)).toEqual([]);
    const fence = await oldPrimary.query<{ fenced_by: string; superseded_by_timeline: number }>("SELECT fenced_by, superseded_by_timeline FROM database_fence");
    expect(fence.rows).toEqual([{ fenced_by: "cp-node-1", superseded_by_timeline: 2 }]);
    for (const e of [before, before + 1, 0]) {
      const err = await oldPrimary.query("SELECT assert_epoch($1)", [e]).then(() => undefined, (x: unknown) => x as { code: string });
      expect(err?.code).toBe("AH001");
    }
    // No epoch held on two databases: every term on the promoted server is above every term the zombie ever had.
    const newTerms = await terms(promoted);
    const zombieMax = Math.max(...zombieTerms.map((t) => t.epoch));
    const opened = newTerms.filter((t) => t.epoch > before);
    expect(opened.length).toBeGreaterThan(0);
    expect(Math.min(...opened.map((t) => t.epoch))).toBeGreaterThan(zombieMax);
    // The promotion was stamped by that first term.
    const stamp = await promoted.query<{ timeline: number; stamped_epoch: string; automatic: boolean }>("SELECT timeline, stamped_epoch, automatic FROM promotions");
    expect(stamp.rows).toEqual([{ timeline: 2, stamped_epoch: String(Math.min(...opened.map((t) => t.epoch))), automatic: true }]);
    // The agent's own /readyz carries seed 004 §5's check as it sees it (the stamp, from its next look at the servers).
    const ready = await waitFor(async () => {
      const r = await getJson<{ cluster: { last_promotion: unknown } }>(`${a.url}/readyz`);
      return r?.body.cluster.last_promotion ? r : undefined;
    }, { timeoutMs: 10_000, what: "cp-node-1's /readyz to show the promotion" });
    expect(ready.body.cluster).toMatchObject({
      writes_usable: true,
      writer: { node_id: "cp-node-1", timeline: 2, writer_region: "eu-west-1" },
      last_promotion: { timeline: 2, stamp: Math.min(...opened.map((t) => t.epoch)) },
    });

    // An agent alone whose URL names only the old primary refuses to start there, and says why.
    const lonely = spawnAutonomy("cp-node-2", ["agent", "--node-id", "cp-node-2", "--database-url", p.url(), "--listen", "127.0.0.1:0", ...FAST_TIMINGS]);
    others.push(lonely);
    const code = await lonely.waitExit();
    expect(code).not.toBe(0);
    expect(lonely.tail()).toMatch(/superseded by timeline 2/);
    expect((await terms(oldPrimary)).filter((t) => t.open)).toEqual([]);
  });
});

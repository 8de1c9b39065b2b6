import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../core/clock.js";
import { startPgCluster, type PgCluster } from "../../pgcluster/index.js";
import { AgentProcess, theOneLeader } from "../support/agents.js";
import { runCli } from "../support/cli-run.js";
import { freePortBlock } from "../support/dev-cluster.js";
import { spawnAutonomy, waitHealthy, type AutonomyProcess } from "../support/processes.js";

/**
 * Found by `npm run chaos` (seed 2): a database restart ended the
 * coordinator's lock session, it was a standby for a few hundred
 * milliseconds, and the term that began in that window never reached the
 * audit (the engine compared the next change with a leader it had published
 * but not audited). Every term is audited once, also one that begins while
 * the coordinator is a standby, and one that begins and ends before it acts
 * again is recorded late from leader_epochs.
 */
describe("every term reaches the audit, across a coordinator's standby window", () => {
  let cluster: PgCluster;
  let db: pg.Client;
  let auditDir: string;
  let url: string;
  let coordinator: AutonomyProcess;
  const agents: AgentProcess[] = [];

  const leader = () => theOneLeader(agents);
  const role = async () => {
    const r = await runCli(["ha", "status", "--output", "json", "--orchestrator-url", url]);
    return r.code === 0 ? (JSON.parse(r.stdout) as { coordinator: { role: string; term: number } }).coordinator : undefined;
  };
  const audited = async () =>
    (await db.query<{ epoch: number; n: number; late: boolean }>(
      `SELECT (event->>'epoch')::int AS epoch, count(*)::int AS n, bool_or((event->'evidence'->>'recorded_late')::boolean) AS late
         FROM audit_events WHERE type = 'ha.leader.changed' GROUP BY 1 ORDER BY 1`,
    )).rows;
  const terms = async () => (await db.query<{ epoch: number }>("SELECT epoch::int FROM leader_epochs ORDER BY epoch")).rows.map((r) => r.epoch);
  /** Ends the coordinator's coordinator-lock session, as a database restart would: it is a standby until it takes the lock again. */
  const endLockSession = () => db.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'autonomy-coordinator/%'");

  beforeAll(async () => {
    cluster = await startPgCluster({ standbys: 0 });
    db = new pg.Client({ connectionString: cluster.primary.url() });
    await db.connect();
    auditDir = await mkdtemp(path.join(os.tmpdir(), "autonomy-every-term-"));
    // Restarted on the same port later: a port below the ephemeral range, which the agents' reconnects cannot take meanwhile.
    const port = await freePortBlock(1);
    url = `http://127.0.0.1:${port}`;
    coordinator = spawnAutonomy("coordinator", ["coordinator", "--database-url", cluster.primary.url(), "--listen", `127.0.0.1:${port}`, "--audit-dir", auditDir, "--settle", "0"]);
    await waitHealthy(coordinator, url);
    for (const [nodeId, priority] of [["cp-node-1", 300], ["cp-node-2", 200], ["cp-node-3", 100]] as const) {
      agents.push(await AgentProcess.start({ nodeId, databaseUrl: cluster.primary.url(), coordinatorUrl: url, priority }));
    }
    await leader();
  }, 120_000);

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.process.stop()));
    await coordinator?.stop();
    await db?.end();
    await cluster?.close();
    await rm(auditDir, { recursive: true, force: true });
  });

  it("a term that begins while the coordinator is a standby is audited once it is active again", async () => {
    const before = await role();
    const first = await leader();
    await waitFor(async () => (await audited()).length === (await terms()).length || undefined, { timeoutMs: 10_000, what: "the first term audited" });
    // The coordinator loses its lock session and, in the same instant, the leader's agent dies.
    await endLockSession();
    await first!.process.kill();
    agents.splice(agents.indexOf(first!), 1);
    const next = await leader();
    await waitFor(async () => ((await role())?.term ?? 0) > before!.term || undefined, { timeoutMs: 10_000, what: "the coordinator active again in a new term" });
    expect(coordinator.output.some((l) => l.includes("standby again"))).toBe(true);
    const all = await terms();
    await waitFor(async () => (await audited()).length === all.length || undefined, { timeoutMs: 10_000, what: "every term audited" });
    const rows = await audited();
    expect(rows.map((r) => r.epoch)).toEqual(all);
    expect(rows.every((r) => r.n === 1)).toBe(true);
    expect(next!.nodeId).not.toBe(first!.nodeId);
  });

  it("a term that begins and ends while no coordinator acts is recorded late, from leader_epochs", async () => {
    await coordinator.kill();
    // Two leaders come and go with no coordinator at all.
    for (let i = 0; i < 2; i++) {
      const current = await leader();
      await current!.process.kill();
      agents.splice(agents.indexOf(current!), 1);
      agents.push(await AgentProcess.start({ nodeId: current!.nodeId, databaseUrl: cluster.primary.url(), coordinatorUrl: url, priority: 50 }));
    }
    await leader();
    const all = await terms();
    coordinator = spawnAutonomy("coordinator", ["coordinator", "--database-url", cluster.primary.url(), "--listen", new URL(url).host, "--audit-dir", auditDir, "--settle", "0"]);
    await waitHealthy(coordinator, url);
    await waitFor(async () => (await audited()).length >= all.length || undefined, { timeoutMs: 15_000, what: "the terms of the coordinator's absence recorded" });
    const rows = await audited();
    expect(rows.map((r) => r.epoch)).toEqual(await terms());
    expect(rows.every((r) => r.n === 1)).toBe(true);
    // The ones that ended while nobody watched are marked as recorded late.
    expect(rows.filter((r) => r.late).length).toBeGreaterThan(0);
  });
});

import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../core/clock.js";
import { readAuditEvents } from "../../coordinator/audit/index.js";
import { startPgCluster, type PgCluster } from "../../pgcluster/index.js";
import { freePortBlock } from "../support/dev-cluster.js";
import { AgentProcess, writeReadyAgents } from "../support/agents.js";
import { describeRun, expectOk, runCli } from "../support/cli-run.js";
import { spawnAutonomy, waitHealthy, type AutonomyProcess } from "../support/processes.js";

/**
 * Maintenance mode and the manual-reconcile hold outlive the coordinator
 * (migration 6): a coordinator killed with SIGKILL and started again is still
 * paused, audited once; and an agent restarted during a manual-reconcile,
 * with no coordinator up, reads the hold in the database and does not
 * campaign until a failover names a node.
 */
describe("durable coordinator state", () => {
  let cluster: PgCluster;
  let auditDir: string;
  let port: number;
  let url: string;
  let coordinator: AutonomyProcess | undefined;
  const agents = new Map<string, AgentProcess>();
  const cli = (args: string[]) => runCli([...args, "--orchestrator-url", url], { AUTONOMY_OPERATOR: "alice" });

  async function startCoordinator(): Promise<void> {
    coordinator = spawnAutonomy("coordinator", ["coordinator", "--database-url", cluster.primary.url(), "--listen", `127.0.0.1:${port}`, "--audit-dir", auditDir]);
    await waitHealthy(coordinator, url);
  }
  const startAgent = async (nodeId: string, priority: number) => {
    agents.set(nodeId, await AgentProcess.start({ nodeId, databaseUrl: cluster.primary.url(), coordinatorUrl: url, priority }));
  };
  const status = async () => JSON.parse((await cli(["ha", "status", "--output", "json"])).stdout) as { maintenance: boolean; leader: { holder_id: string } };

  beforeAll(async () => {
    cluster = await startPgCluster({ standbys: 0 });
    auditDir = await mkdtemp(path.join(os.tmpdir(), "autonomy-durable-audit-"));
    // Below the ephemeral range: the coordinator is started again on this port after each kill.
    port = await freePortBlock(1);
    url = `http://127.0.0.1:${port}`;
    await startCoordinator();
    await startAgent("cp-node-1", 200);
    await startAgent("cp-node-2", 100);
    await waitFor(async () => (await writeReadyAgents([...agents.values()])).length === 1, { timeoutMs: 20_000, what: "a leader" });
  });
  afterAll(async () => {
    await Promise.all([...agents.values()].map((a) => a.process.stop()));
    await coordinator?.stop();
    await cluster?.close();
    await rm(auditDir, { recursive: true, force: true });
  });

  it("maintenance survives a coordinator killed with SIGKILL, and is audited once", async () => {
    expectOk(await cli(["ha", "pause", "--reason", "database upgrade"]));
    await coordinator!.kill();
    await startCoordinator();
    await waitFor(async () => (await status()).maintenance || undefined, { timeoutMs: 10_000, what: "the restarted coordinator to be paused" });
    const paused = (await readAuditEvents(auditDir)).events.filter((e) => e.type === "ha.maintenance.paused");
    expect(paused.map((e) => [e.operator, e.reason])).toEqual([["alice", "database upgrade"]]);
    expectOk(await cli(["ha", "resume", "--reason", "upgrade done"]));
    await coordinator!.kill();
    await startCoordinator();
    await waitFor(async () => ((await status()).maintenance ? undefined : true), { timeoutMs: 10_000, what: "the restarted coordinator to be resumed" });
  });

  it("an agent restarted during a manual-reconcile, with no coordinator up, stays out of the race", async () => {
    await waitFor(async () => {
      const s = JSON.parse((await cli(["ha", "status", "--output", "json"])).stdout) as { nodes: { connected: boolean }[] };
      return (s.nodes.length === 2 && s.nodes.every((n) => n.connected)) || undefined;
    }, { timeoutMs: 20_000, what: "both agents reporting to the coordinator" });
    const r = await cli(["ha", "split-brain", "recover", "--strategy", "manual-reconcile", "--reason", "inspect first"]);
    expect(r.code, describeRun(r)).toBe(0);
    await waitFor(async () => ((await writeReadyAgents([...agents.values()])).length === 0 ? true : undefined), { timeoutMs: 10_000, what: "nobody Write-Ready" });

    // The coordinator dies; cp-node-1 restarts without it and reads the hold in the database.
    await coordinator!.kill();
    await agents.get("cp-node-1")!.process.kill();
    await startAgent("cp-node-1", 200);
    const restarted = agents.get("cp-node-1")!;
    await waitFor(() => restarted.process.output.some((l) => l.includes("manual-reconcile hold recorded in the database")) || undefined, {
      timeoutMs: 20_000,
      what: "cp-node-1 to stand by on the recorded hold",
    });
    const db = new pg.Client({ connectionString: cluster.primary.url() });
    await db.connect();
    try {
      expect((await db.query("SELECT count(*)::int AS n FROM leader_epochs WHERE resigned_at IS NULL")).rows[0].n).toBe(0);
      // A coordinator started again continues the hold; a failover that names a node ends it.
      await startCoordinator();
      await waitFor(async () => (await cli(["ha", "status", "--output", "json"])).stdout.includes('"cp-node-1"') || undefined, { timeoutMs: 20_000, what: "cp-node-1 reporting" });
      expect((await writeReadyAgents([...agents.values()])).length).toBe(0);
      const f = await cli(["ha", "failover", "trigger", "--target", "cp-node-1", "--reason", "post-reconcile: cp-node-1 chosen"]);
      expect(f.code, describeRun(f)).toBe(0);
      expect((await writeReadyAgents([...agents.values()])).map((a) => a.nodeId)).toEqual(["cp-node-1"]);
      await waitFor(async () => ((await db.query("SELECT reconcile_hold FROM coordinator_state")).rows[0]?.reconcile_hold === false) || undefined, {
        timeoutMs: 10_000,
        what: "the recorded hold cleared",
      });
    } finally {
      await db.end();
    }
  });
});

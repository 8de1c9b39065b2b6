import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../core/clock.js";
import { LOCK_CLASS_ID } from "../../db/identifiers.js";
import { freePort, startPgCluster, type PgCluster } from "../../pgcluster/index.js";
import { AgentProcess, writeReadyAgents } from "../support/agents.js";
import { describeRun, runCli } from "../support/cli-run.js";
import { spawnAutonomy, waitHealthy, type AutonomyProcess } from "../support/processes.js";

/**
 * The advisory lock is FIFO: a --successor agent already queued on it would
 * win the lock a planned failover frees for another target ("chosen successor
 * X lost the race"). The failover holds every other node for its duration,
 * so the named target takes over and the queued agent is released afterwards.
 */
describe("a planned failover with a --successor agent queued on the lock", () => {
  let cluster: PgCluster;
  let coordinator: AutonomyProcess;
  let url: string;
  let auditDir: string;
  const agents: AgentProcess[] = [];

  beforeAll(async () => {
    cluster = await startPgCluster({ standbys: 0 });
    auditDir = await mkdtemp(path.join(os.tmpdir(), "autonomy-race-audit-"));
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    coordinator = spawnAutonomy("coordinator", ["coordinator", "--database-url", cluster.primary.url(), "--listen", `127.0.0.1:${port}`, "--audit-dir", auditDir], { AUTONOMY_DESIGNATE_SUCCESSOR: "false" });
    await waitHealthy(coordinator, url);
  });
  afterAll(async () => {
    await Promise.all(agents.map((a) => a.process.stop()));
    await coordinator?.stop();
    await cluster?.close();
    await rm(auditDir, { recursive: true, force: true });
  });

  it("the named target takes over, not the agent queued first", async () => {
    agents.push(await AgentProcess.start({ nodeId: "cp-node-1", databaseUrl: cluster.primary.url(), coordinatorUrl: url, priority: 300 }));
    await waitFor(async () => (await writeReadyAgents(agents))[0]?.nodeId === "cp-node-1" || undefined, { timeoutMs: 20_000, what: "cp-node-1 to lead" });
    agents.push(await AgentProcess.start({ nodeId: "cp-node-2", databaseUrl: cluster.primary.url(), coordinatorUrl: url, priority: 100, successor: true }));
    agents.push(await AgentProcess.start({ nodeId: "cp-node-3", databaseUrl: cluster.primary.url(), coordinatorUrl: url, priority: 200 }));

    // cp-node-2 is queued on the lock before anything else happens.
    const db = new pg.Client({ connectionString: cluster.primary.url() });
    await db.connect();
    try {
      const queued = async () =>
        (await db.query(
          `SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.classid = $1::oid AND NOT l.granted AND a.application_name = 'cp-node-2'`,
          [LOCK_CLASS_ID],
        )).rowCount === 1 || undefined;
      await waitFor(queued, { timeoutMs: 20_000, what: "cp-node-2 queued on the lock" });
      await waitFor(async () => (await runCli(["ha", "status", "--orchestrator-url", url, "--output", "json"])).stdout.includes('"cp-node-3"') || undefined, { timeoutMs: 20_000, what: "cp-node-3 in the view" });

      const r = await runCli(["ha", "failover", "trigger", "--orchestrator-url", url, "--target", "cp-node-3", "--operator", "alice", "--reason", "move to cp-node-3"]);
      expect(r.code, describeRun(r)).toBe(0);
      expect(r.stdout).toMatch(/successor cp-node-3 acquired epoch 2/);
      expect(r.stdout).not.toMatch(/lost the race/);
      expect((await writeReadyAgents(agents)).map((a) => a.nodeId)).toEqual(["cp-node-3"]);

      // Released afterwards: cp-node-2 queues on the lock again, as a --successor does.
      await waitFor(queued, { timeoutMs: 20_000, what: "cp-node-2 queued again once released" });
    } finally {
      await db.end();
    }
  });
});

import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../core/clock.js";
import { readAuditEvents } from "../../coordinator/audit/index.js";
import { freePort, startPgCluster, type PgCluster } from "../../pgcluster/index.js";
import { AgentProcess, writeReadyAgents } from "../support/agents.js";
import { spawnAutonomy, waitHealthy, type AutonomyProcess } from "../support/processes.js";

/**
 * Cold start: priorities 300/200/100 started in reverse order (the least
 * preferred first), a coordinator settling before its first order. The
 * priority-300 node leads, never the one that happened to connect first,
 * and the nodes the settle held are released afterwards.
 */
describe("cold start", () => {
  let cluster: PgCluster;
  let coordinator: AutonomyProcess | undefined;
  let auditDir: string;
  let agents: AgentProcess[] = [];

  beforeAll(async () => {
    cluster = await startPgCluster({ standbys: 0 });
  });
  afterEach(async () => {
    await Promise.all(agents.map((a) => a.process.stop()));
    await coordinator?.stop();
    await rm(auditDir, { recursive: true, force: true });
    agents = [];
    // A fresh database state for the next case: nobody leads, no terms.
    await cluster.primary.query("DROP SCHEMA IF EXISTS cold CASCADE");
  });
  afterAll(async () => {
    await cluster?.close();
  });

  async function startCoordinator(args: string[]): Promise<string> {
    auditDir = await mkdtemp(path.join(os.tmpdir(), "autonomy-cold-audit-"));
    const port = await freePort();
    coordinator = spawnAutonomy("coordinator", ["coordinator", "--database-url", cluster.primary.url(), "--schema", "cold", "--listen", `127.0.0.1:${port}`, "--audit-dir", auditDir, ...args]);
    const url = `http://127.0.0.1:${port}`;
    await waitHealthy(coordinator, url);
    return url;
  }

  /** Starts cp-node-3 (priority 100), then cp-node-2 (200), then cp-node-1 (300), one after the other. */
  async function startInReverse(coordinatorUrl: string): Promise<void> {
    for (const [nodeId, priority] of [["cp-node-3", 100], ["cp-node-2", 200], ["cp-node-1", 300]] as const) {
      agents.push(await AgentProcess.start({ nodeId, databaseUrl: cluster.primary.url(), coordinatorUrl, priority, args: ["--schema", "cold"] }));
    }
  }

  it.each([
    // --settle-max far above three process starts one after the other on a loaded machine: the settle still ends when all three reported.
    ["--expect-nodes: the settle ends when all three have reported", ["--expect-nodes", "cp-node-1,cp-node-2,cp-node-3", "--settle-max", "60s"]],
    // A window wide enough for three process starts on a loaded machine.
    ["a settle window (--settle 10s), with the three starting within it", ["--settle", "10s"]],
  ])("the priority-300 node leads: %s", async (_name, args) => {
    const url = await startCoordinator(args);
    if (args[0] === "--expect-nodes") {
      await startInReverse(url);
    } else {
      // Within the window: started together, the least preferred still first.
      const order: [string, number][] = [["cp-node-3", 100], ["cp-node-2", 200], ["cp-node-1", 300]];
      agents = await Promise.all(order.map(([nodeId, priority], i) =>
        new Promise<void>((r) => setTimeout(r, i * 100)).then(() => AgentProcess.start({ nodeId, databaseUrl: cluster.primary.url(), coordinatorUrl: url, priority, args: ["--schema", "cold"] })),
      ));
    }
    const leader = await waitFor(async () => (await writeReadyAgents(agents))[0], { timeoutMs: 30_000, what: "a Write-Ready leader" });
    expect(leader.nodeId, coordinator!.tail(40)).toBe("cp-node-1");
    // The order names the settle; the others are released (they report held = false again).
    const order = await waitFor(async () => (await readAuditEvents(auditDir)).events.find((e) => e.type === "ha.failover.automatic" && e.evidence.cause === "cold_start"), {
      timeoutMs: 10_000,
      what: "the cold-start order in the audit log",
    });
    expect(order.node_id).toBe("cp-node-1");
    expect(order.reason).toMatch(/^cold start settled after \d+ms \(reported: cp-node-1, cp-node-2, cp-node-3\)/);
    await waitFor(async () => {
      const roles = await Promise.all(agents.filter((a) => a !== leader).map(async (a) => (await a.leader())?.role));
      return roles.every((r) => r === "follower") || undefined;
    }, { timeoutMs: 10_000, what: "the other nodes released from the settle's hold" });
  });
});

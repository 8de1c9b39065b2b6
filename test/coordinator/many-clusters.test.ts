import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../core/clock.js";
import { LeaderEventKind, LeaderService } from "../../gen/autonomy/ha/v1/leader_pb.js";
import { clientFor } from "../../rpc/client.js";
import { startPgCluster, type PgCluster } from "../../pgcluster/index.js";
import { AgentProcess, writeReadyAgents } from "../support/agents.js";
import { describeRun, runCli } from "../support/cli-run.js";
import { freePortBlock } from "../support/dev-cluster.js";
import { spawnAutonomy, waitHealthy, type AutonomyProcess } from "../support/processes.js";

/**
 * One coordinator tier (two coordinators) serving two clusters on one lock
 * database: each cluster has its own lock, epochs, view, audit, metrics and
 * leader stream, and a failover in one changes nothing in the other.
 */
describe("a coordinator tier serving several clusters", () => {
  let cluster: PgCluster;
  let db: pg.Client;
  let auditDir: string;
  let urls: string[];
  const coordinators: AutonomyProcess[] = [];
  const agents = new Map<string, AgentProcess[]>();
  const cli = (args: string[]) => runCli([...args, "--orchestrator-url", urls.join(",")], { AUTONOMY_OPERATOR: "alice" });
  const leaderOf = (clusterId: string) =>
    waitFor(async () => {
      const ready = await writeReadyAgents(agents.get(clusterId)!);
      return ready.length === 1 ? ready[0]!.nodeId : undefined;
    }, { timeoutMs: 20_000, what: `one Write-Ready agent in ${clusterId}` });
  const epochs = async (clusterId: string) => (await db.query("SELECT epoch::int, holder_id, resigned_at FROM leader_epochs WHERE cluster_id = $1 ORDER BY epoch", [clusterId])).rows;

  beforeAll(async () => {
    cluster = await startPgCluster({ standbys: 0 });
    db = new pg.Client({ connectionString: cluster.primary.url() });
    await db.connect();
    auditDir = await mkdtemp(path.join(os.tmpdir(), "autonomy-clusters-audit-"));
    const base = await freePortBlock(2);
    urls = [0, 1].map((i) => `http://127.0.0.1:${base + i}`);
    for (const i of [0, 1]) {
      const c = spawnAutonomy(`coord-${i}`, [
        "coordinator", "--database-url", cluster.primary.url(), "--listen", `127.0.0.1:${base + i}`, "--audit-dir", path.join(auditDir, `coord-${i}`),
        "--coordinator-id", `coord-${i}`, "--cluster-id", "alpha,beta", "--settle", "0",
      ]);
      coordinators.push(c);
      await waitHealthy(c, urls[i]!);
    }
    for (const clusterId of ["alpha", "beta"]) {
      const started: AgentProcess[] = [];
      for (const [n, priority] of [[1, 200], [2, 100]] as const) {
        started.push(await AgentProcess.start({ nodeId: `${clusterId}-node-${n}`, databaseUrl: cluster.primary.url(), coordinatorUrl: urls.join(","), priority, args: ["--cluster-id", clusterId] }));
      }
      agents.set(clusterId, started);
    }
    await Promise.all([leaderOf("alpha"), leaderOf("beta")]);
  }, 120_000);

  afterAll(async () => {
    await Promise.all([...agents.values()].flat().map((a) => a.process.stop()));
    await Promise.all(coordinators.map((c) => c.stop()));
    await db?.end();
    await cluster?.close();
    await rm(auditDir, { recursive: true, force: true });
  });

  it("lists both clusters, and a command that names none is refused with the list", async () => {
    const listed = await waitFor(async () => {
      const r = await cli(["ha", "clusters", "--output", "json"]);
      const body = r.code === 0 ? (JSON.parse(r.stdout) as { clusters: { cluster_id: string; holder_id: string | null; connected_nodes: number }[] }) : undefined;
      return body?.clusters.every((c) => c.holder_id && c.connected_nodes === 2) ? body : undefined;
    }, { timeoutMs: 20_000, what: "both clusters listed with a leader and two connected nodes" });
    expect(listed.clusters.map((c) => c.cluster_id)).toEqual(["alpha", "beta"]);

    const unnamed = await cli(["ha", "status"]);
    expect(unnamed.code, describeRun(unnamed)).toBe(2);
    expect(unnamed.stderr).toContain('this coordinator serves 2 clusters ("alpha", "beta"); name one: --cluster ID');
    const unknown = await cli(["ha", "status", "--cluster", "gamma"]);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain('unknown cluster "gamma"; this coordinator serves "alpha", "beta"');

    const beta = await cli(["ha", "status", "--cluster", "beta", "--output", "json"]);
    expect(beta.code, describeRun(beta)).toBe(0);
    const body = JSON.parse(beta.stdout) as { nodes: { node_id: string }[] };
    expect(body.nodes.map((n) => n.node_id).sort()).toEqual(["beta-node-1", "beta-node-2"]);
  });

  it("a planned failover in one cluster changes nothing in the other: its leader, epochs, leader stream and audit", async () => {
    const betaLeader = await leaderOf("beta");
    const betaEpochs = await epochs("beta");
    const betaRevision = await (await fetch(`${urls[0]}/v1/health/leader?cluster=beta`)).json();
    const alphaBefore = await epochs("alpha");
    const alphaLeader = await leaderOf("alpha");
    const target = agents.get("alpha")!.map((a) => a.nodeId).find((id) => id !== alphaLeader)!;
    // A WatchLeader stream of each cluster, from before the failover.
    const watching = new AbortController();
    const seen: Record<string, LeaderEventKind[]> = { alpha: [], beta: [] };
    const watches = ["alpha", "beta"].map(async (clusterId) => {
      const leaders = clientFor(LeaderService, urls.join(","));
      try {
        for await (const e of leaders.watchLeader({ clusterId }, { signal: watching.signal })) seen[clusterId]!.push(e.kind);
      } catch {
        // Ended by the test.
      }
    });
    await waitFor(() => (seen.alpha!.length > 0 && seen.beta!.length > 0) || undefined, { timeoutMs: 10_000, what: "both watch snapshots" });

    const r = await cli(["ha", "failover", "trigger", "--cluster", "alpha", "--target", target, "--reason", "move alpha only"]);
    expect(r.code, describeRun(r)).toBe(0);
    expect(await leaderOf("alpha")).toBe(target);
    expect((await epochs("alpha")).length).toBe(alphaBefore.length + 1);

    await waitFor(() => seen.alpha!.includes(LeaderEventKind.LEADER_CHANGED) || undefined, { timeoutMs: 10_000, what: "alpha's watchers told of its new leader" });
    watching.abort();
    await Promise.all(watches);
    // beta's watchers saw their snapshot and nothing of alpha's failover.
    expect(seen.beta).toEqual([LeaderEventKind.SNAPSHOT]);

    expect(await leaderOf("beta")).toBe(betaLeader);
    expect(await epochs("beta")).toEqual(betaEpochs);
    expect(await (await fetch(`${urls[0]}/v1/health/leader?cluster=beta`)).json()).toMatchObject({ holder_id: betaLeader, current_epoch: (betaRevision as { current_epoch: number }).current_epoch });

    // The audit names the cluster: alpha's failover is alpha's only.
    const audited = async (clusterId: string) => {
      const q = await cli(["audit", "query", "--cluster", clusterId, "--type", "ha.failover.completed", "--output", "json"]);
      expect(q.code, describeRun(q)).toBe(0);
      return q.stdout.trim() === "" ? [] : (JSON.parse(q.stdout) as { cluster_id: string }[] | { events: { cluster_id: string }[] });
    };
    const alphaEvents = await audited("alpha");
    const betaEvents = await audited("beta");
    const list = (x: unknown) => (Array.isArray(x) ? x : (x as { events: { cluster_id: string }[] }).events) as { cluster_id: string }[];
    expect(list(alphaEvents).length).toBeGreaterThan(0);
    expect(list(alphaEvents).every((e) => e.cluster_id === "alpha")).toBe(true);
    expect(list(betaEvents)).toEqual([]);

    // Metrics carry both clusters, each with its own epoch.
    const metrics = await (await fetch(`${urls[0]}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`autonomy_ha_epoch\\{cluster_id="alpha"\\} ${alphaBefore.length + 1}`));
    expect(metrics).toMatch(new RegExp(`autonomy_ha_epoch\\{cluster_id="beta"\\} ${betaEpochs.length}`));
  });
});

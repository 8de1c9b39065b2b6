import { afterEach, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { agentHttpRoutes } from "../../agent/serve/http-routes.js";
import { agentMetrics } from "../../agent/serve/metrics.js";
import { coordinatorMetrics, tierMetrics, type MetricsSnapshot } from "../../coordinator/live/metrics.js";
import { leaderReport, localDb, node, replication } from "../../coordinator/view/builders.js";
import { noLeader } from "../../core/model.js";
import { listenerMetrics } from "../../rpc/auth/listener-metrics.js";
import { metricsText } from "../../rpc/metrics.js";

/*
 * /metrics is checked by promtool, Prometheus's own parser and linter (from
 * Debian's `prometheus` package; .ci/run puts it on PATH). Without promtool
 * those two cases skip; the rest run everywhere.
 */

const promtoolFound = spawnSync("promtool", ["--version"], { stdio: "ignore" }).status === 0;

function promtool(text: string): { status: number | null; problems: string[] } {
  const r = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
  return { status: r.status, problems: `${r.stdout}${r.stderr}`.split("\n").filter((l) => l.trim() !== "") };
}

const agentReport = leaderReport("cp-node-1", 8, { replication: replication({ replicaCount: 1, maxReplayLagSeconds: 0.25 }), localDatabase: localDb() });

// Label values Prometheus needs escaped: a quote, a backslash and a newline.
const awkwardCluster = 'lab "east"\\2\nb';
const snapshot = (overrides: Partial<MetricsSnapshot> = {}): MetricsSnapshot => ({
  clusterId: awkwardCluster,
  leader: { ...noLeader, holderId: "cp-node-1", epoch: 8, writeReady: true },
  nodes: [node(agentReport, 0), node(leaderReport("cp-node-2", 7), 0)],
  splitBrain: false,
  splitBrainDetections: 2,
  failovers: { planned: 1, automatic: 3, recovery: 0 },
  maintenance: false,
  databaseReachable: true,
  watchers: 4,
  intruders: { current: 0, detected: 1, terminated: 1 },
  ...overrides,
});

/** Every metric each process exposed before prom-client, with its type: none may go or change type. */
const kept: Record<string, "gauge" | "counter"> = {
  autonomy_agent_role: "gauge",
  autonomy_agent_epoch: "gauge",
  autonomy_agent_observed_epoch: "gauge",
  autonomy_agent_session_lock_held: "gauge",
  autonomy_agent_write_ready: "gauge",
  autonomy_replication_max_replay_lag_seconds: "gauge",
  autonomy_replication_max_write_lag_seconds: "gauge",
  autonomy_replication_lag_status: "gauge",
  autonomy_replication_replicas: "gauge",
  autonomy_local_replay_lag_seconds: "gauge",
  autonomy_local_in_recovery: "gauge",
  autonomy_listener_insecure: "gauge",
  autonomy_listener_tls: "gauge",
  autonomy_listener_tokens: "gauge",
  autonomy_ha_leader: "gauge",
  autonomy_ha_has_leader: "gauge",
  autonomy_ha_epoch: "gauge",
  autonomy_ha_leader_write_ready: "gauge",
  autonomy_ha_node_connected: "gauge",
  autonomy_ha_node_epoch: "gauge",
  autonomy_ha_node_replay_lag_seconds: "gauge",
  autonomy_ha_replication_max_replay_lag_seconds: "gauge",
  autonomy_ha_split_brain: "gauge",
  autonomy_ha_split_brain_detections_total: "counter",
  autonomy_ha_failovers_total: "counter",
  autonomy_ha_maintenance: "gauge",
  autonomy_ha_database_reachable: "gauge",
  autonomy_ha_intruder_lock_holders: "gauge",
  autonomy_ha_intruders_detected_total: "counter",
  autonomy_ha_intruders_terminated_total: "counter",
  autonomy_ha_leader_watchers: "gauge",
  autonomy_ha_coordinator_active: "gauge",
  autonomy_ha_coordinator_term: "gauge",
};

const tier = { role: () => ({ role: "active" as const, term: 3, coordinatorId: "coord-a", activeUrl: "http://coord-a:8890", activeId: "coord-a" }), acting: () => true };
const allAutonomy = () =>
  Promise.all([agentMetrics(() => agentReport), listenerMetrics(undefined, "127.0.0.1"), coordinatorMetrics(() => snapshot()), tierMetrics(tier)].map((r) => r.metrics())).then((t) => t.join("\n"));

describe("/metrics", () => {
  let server: Server | undefined;
  afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

  it("keeps every metric name and type it had", async () => {
    const text = await allAutonomy();
    const types = Object.fromEntries([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1], m[2]]));
    expect(types).toEqual(kept);
  });

  it("escapes label values and keeps the label order of the old exposition", async () => {
    const text = await coordinatorMetrics(() => snapshot()).metrics();
    expect(text).toContain('autonomy_ha_leader{cluster_id="lab \\"east\\"\\\\2\\nb",node_id="cp-node-1"} 1');
    expect(text).toContain('autonomy_ha_failovers_total{cluster_id="lab \\"east\\"\\\\2\\nb",kind="automatic"} 3');
    const agent = await agentMetrics(() => agentReport).metrics();
    expect(agent).toMatch(/^autonomy_agent_epoch\{node_id="cp-node-1",cluster_id="default"\} 8$/m);
    expect(agent).toMatch(/^autonomy_agent_role\{node_id="cp-node-1",cluster_id="default",role="leader"\} 1$/m);
  });

  it("reads the snapshot at each scrape: a node that is gone leaves no series behind", async () => {
    let current = snapshot();
    const registry = coordinatorMetrics(() => current);
    expect(await registry.metrics()).toMatch(/node_id="cp-node-2"/);
    current = snapshot({ nodes: [node(agentReport, 0)], watchers: 9 });
    const text = await registry.metrics();
    expect(text).not.toMatch(/node_id="cp-node-2"/);
    expect(text).toMatch(/^autonomy_ha_leader_watchers\{[^}]*\} 9$/m);
  });

  it("is served on the HTTP route with the Prometheus content type, process metrics included", async () => {
    const router = agentHttpRoutes(() => agentReport, () => listenerMetrics(undefined, "127.0.0.1"));
    server = createServer(router.handle);
    await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const text = await res.text();
    expect(text).toMatch(/^process_cpu_seconds_total \d/m);
    expect(text).toMatch(/^process_resident_memory_bytes \d/m);
    expect(text).toMatch(/^autonomy_agent_write_ready\{node_id="cp-node-1",cluster_id="default"\} 1$/m);
    expect(text).toMatch(/^autonomy_listener_insecure 0$/m);
  });

  it.skipIf(!promtoolFound)("passes promtool's parser and linter (the autonomy_* metrics)", async () => {
    expect(promtool(await allAutonomy())).toEqual({ status: 0, problems: [] });
  });

  it.skipIf(!promtoolFound)("parses whole with promtool, process and Node.js metrics included", async () => {
    const { status, problems } = promtool(await metricsText(agentMetrics(() => agentReport), listenerMetrics(undefined, "127.0.0.1"), coordinatorMetrics(() => snapshot())));
    // Exit 1 is a parse error; 3 is lint only. prom-client's own nodejs_*_total
    // gauges draw a naming lint we cannot change; nothing else may.
    expect(status, problems.join("\n")).not.toBe(1);
    expect(problems.filter((p) => !/^nodejs_\w+ non-counter metrics should not have "_total" suffix$/.test(p))).toEqual([]);
  });
});

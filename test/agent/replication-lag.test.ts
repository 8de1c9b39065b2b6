import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPgCluster, type PgCluster } from "../../pgcluster/index.js";
import { waitFor } from "../../core/clock.js";
import { AgentProcess } from "../support/agents.js";
import { getJson } from "../support/processes.js";

interface ReplicationHealth {
  lag_status: string;
  max_write_lag: string;
  max_replay_lag: string;
  max_replay_lag_seconds: number;
  replicas: number;
  standbys: { application_name: string; state: string; sync_state: string }[];
  local?: { in_recovery: boolean; lag_status: string; replay_lag_seconds: number };
}

describe("replication probes", () => {
  let cluster: PgCluster;
  let leader: AgentProcess;
  let standbyNode: AgentProcess;

  beforeAll(async () => {
    cluster = await startPgCluster({ standbys: 1 });
    const lag = ["--lag-warn", "1s", "--lag-critical", "3s"];
    leader = await AgentProcess.start({ nodeId: "cp-node-1", databaseUrl: cluster.primary.url(), localDatabaseUrl: cluster.primary.url(), args: lag });
    standbyNode = await AgentProcess.start({
      nodeId: "cp-node-2",
      databaseUrl: cluster.primary.url(),
      localDatabaseUrl: cluster.standby.url(),
      args: lag,
    });
  });
  afterAll(async () => {
    await Promise.all([leader?.process.stop(), standbyNode?.process.stop()]);
    await cluster?.close();
  });

  const replication = async (a: AgentProcess) => (await getJson<ReplicationHealth>(`${a.url}/v1/health/replication`))?.body;

  it("reports the streaming standby from pg_stat_replication with the runbook's fields", async () => {
    const r = await waitFor(async () => {
      const body = await replication(leader);
      return body?.replicas === 1 && body.lag_status === "ok" ? body : undefined;
    }, { timeoutMs: 10_000, what: "one replica with lag ok" });
    expect(r).toMatchObject({ lag_status: "ok", replicas: 1 });
    expect(r.max_replay_lag).toMatch(/^\d+(\.\d+)?(ms|s)$/);
    expect(r.standbys[0]).toMatchObject({ application_name: "standby1", state: "streaming", sync_state: "async" });
    expect(r.local).toMatchObject({ in_recovery: false });
    expect((await replication(standbyNode))?.local).toMatchObject({ in_recovery: true, lag_status: "ok" });
  });

  it("paused replay turns lag ok → warn → critical while the primary takes writes, and back to ok on resume", async () => {
    await cluster.primary.query("CREATE TABLE IF NOT EXISTS lag_probe (id serial primary key, at timestamptz default now())");
    await cluster.standby.pauseReplay();
    const seen: string[] = [];
    const writer = setInterval(() => void cluster.primary.query("INSERT INTO lag_probe DEFAULT VALUES").catch(() => undefined), 100);
    try {
      await waitFor(
        async () => {
          const status = (await replication(leader))?.lag_status;
          if (status && seen[seen.length - 1] !== status) seen.push(status);
          return status === "critical";
        },
        { timeoutMs: 20_000, intervalMs: 100, what: "lag status critical" },
      );
      expect(seen).toEqual(["ok", "warn", "critical"]);
      // The standby's own probe measures on its own interval: it reaches critical too, a probe later at most.
      await waitFor(async () => (await replication(standbyNode))?.local?.lag_status === "critical", { timeoutMs: 10_000, what: "the standby's local lag critical" });
    } finally {
      clearInterval(writer);
      await cluster.standby.resumeReplay();
    }
    await waitFor(async () => (await replication(leader))?.lag_status === "ok", { timeoutMs: 10_000, what: "lag status ok after resume" });
    await waitFor(async () => (await replication(standbyNode))?.local?.lag_status === "ok", { timeoutMs: 10_000, what: "standby's local lag ok" });
  });
});

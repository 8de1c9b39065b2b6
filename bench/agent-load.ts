import { timestampMs } from "@bufbuild/protobuf/wkt";
import pg from "pg";
import { waitFor } from "../core/clock.js";
import { DEFAULT_CLUSTER_ID } from "../db/identifiers.js";
import { readDatabaseIdentity } from "../db/leadership.js";
import { HaAdminService } from "../gen/autonomy/ha/v1/admin_pb.js";
import { LeaderEventKind } from "../gen/autonomy/ha/v1/leader_pb.js";
import { clientFor } from "../rpc/client.js";
import { startPgCluster } from "../pgcluster/index.js";
import type { LoadDone, LoadIn, LoadOut } from "./load/report-client.js";
import { LoadChild } from "./support/child.js";
import { CoordinatorProcess } from "./support/coordinator-process.js";
import { LeaderWatch } from "./support/leader-watch.js";
import { ProbeLeader } from "./support/probe-leader.js";
import { summarize, type BenchResult } from "./stats.js";

export interface AgentLoadOptions {
  readonly agents: number;
  readonly seconds: number;
  readonly intervalMs: number;
  readonly transports: number;
  /**
   * Spread the agents evenly over this many clusters (c001, c002, …) served by
   * the one coordinator (--cluster-id), each stream naming its cluster; the
   * probe leads the first. Default: one cluster, the default one.
   */
  readonly clusters?: number;
  /** Prefix of the result's name, e.g. "scale". */
  readonly label?: string;
}

/**
 * One coordinator holding `agents` scripted agent streams that report every
 * `intervalMs` (1,000 × 5/s by default), sent by a separate load process over
 * a few HTTP/2 connections.
 *
 * Report-to-view is measured on a probe: the leader (bench/support/probe-leader.ts,
 * which really holds the lock) is one more stream reporting at the same rate, and
 * every one of its reports flips its Write-Ready. The coordinator publishes
 * each flip as WRITE_READY_CHANGED once the report is in its view, so
 * "report written to the stream → event on a WatchLeader stream" is the
 * report-to-view latency plus one hop back out. The load process checks all
 * other nodes too, with a GetStatus snapshot once a second (see LoadDone).
 *
 * Memory per agent is the coordinator's VmRSS once every stream is connected
 * and its first reports are in, minus its VmRSS before the load client
 * started, divided by the agents: what one more agent costs the coordinator.
 */
export async function agentLoadBench(o: AgentLoadOptions): Promise<BenchResult> {
  const clusterIds = o.clusters && o.clusters > 1 ? Array.from({ length: o.clusters }, (_, i) => `c${String(i + 1).padStart(3, "0")}`) : [DEFAULT_CLUSTER_ID];
  const perCluster = Math.ceil(o.agents / clusterIds.length);
  const cluster = await startPgCluster({ standbys: 0 });
  let coordinator: CoordinatorProcess | undefined;
  let leader: ProbeLeader | undefined;
  let load: LoadChild<LoadIn, LoadOut> | undefined;
  const samples: number[] = [];
  const inbound: number[] = [];
  let done: LoadDone | undefined;
  let coordinatorCpu = 0;
  let missed = 0;
  const rss = { before: 0, connected: 0 };
  try {
    // --max-nodes (64 by default, per cluster) bounds the view against a flood of fake node ids; the load is that many on purpose.
    const clusterArgs = clusterIds.length > 1 ? ["--cluster-id", clusterIds.join(",")] : [];
    coordinator = await CoordinatorProcess.start(cluster.primary.url(), ["--max-nodes", String(perCluster + 16), ...clusterArgs]);
    const url = coordinator.url;
    const probeCluster = clusterIds[0]!;
    const probe = (leader = await ProbeLeader.start({ nodeId: "load-leader", coordinatorUrl: url, databaseUrl: cluster.primary.url(), clusterId: probeCluster }));
    // Keep the probe fresh while the streams connect.
    const keepAlive = setInterval(() => probe.flip(true), o.intervalMs);
    const admin = clientFor(HaAdminService, url, { timeoutMs: 10_000 });
    const connected = async () => {
      const counts = await Promise.all(clusterIds.map(async (clusterId) => (await admin.getStatus({ clusterId })).nodes.filter((n) => n.connected).length));
      return counts.reduce((a, b) => a + b, 0);
    };
    try {
      await waitFor(async () => (await connected()) === 1, { timeoutMs: 10_000, intervalMs: 100, what: "the probe leader's stream in the view" });
      rss.before = coordinator.rssBytes();

      load = LoadChild.start<LoadIn, LoadOut>("report-client", new URL("./load/report-client.ts", import.meta.url));
      load.send({ kind: "start", url, count: o.agents, transports: o.transports, intervalMs: o.intervalMs, clusterIds, lockDatabaseId: await lockDatabaseId(cluster.primary.url()) });
      await load.receive((m): m is Extract<LoadOut, { kind: "connected" }> => m.kind === "connected", 30_000 + o.agents * 5);
      await waitFor(async () => (await connected()) === o.agents + 1, {
        timeoutMs: 60_000 + o.agents * 6,
        intervalMs: 500,
        what: `${o.agents} load streams connected`,
      });
      // Let the burst of first reports (each a new node, so a full evaluation) drain.
      await new Promise((r) => setTimeout(r, 2_000));
      rss.connected = coordinator.rssBytes();
    } finally {
      clearInterval(keepAlive);
    }
    const flip = (writeReady: boolean) => probe.flip(writeReady);

    const watch = LeaderWatch.open(url, clusterIds.length > 1 ? probeCluster : undefined);
    try {
      await watch.ready();
      load.send({ kind: "measure" });
      const cpuBefore = coordinator.cpuSeconds();
      const started = performance.now();
      let writeReady = true;
      for (let next = started; next < started + o.seconds * 1000; next += o.intervalMs) {
        await new Promise((r) => setTimeout(r, Math.max(0, next - performance.now())));
        writeReady = !writeReady;
        const sentAt = performance.now();
        flip(writeReady);
        const want = writeReady;
        const seen = await watch
          .next((e) => e.kind === LeaderEventKind.WRITE_READY_CHANGED && e.leader?.writeReady === want, sentAt, o.intervalMs * 5)
          .catch(() => undefined);
        if (!seen) {
          missed++;
          continue;
        }
        samples.push(seen.at - sentAt);
        // Split at the event's publication time (coordinator wall clock, ms): inbound vs outbound.
        if (seen.event.at) inbound.push(timestampMs(seen.event.at) - (performance.timeOrigin + sentAt));
      }
      coordinatorCpu = (coordinator.cpuSeconds() - cpuBefore) / ((performance.now() - started) / 1000);
      load.send({ kind: "finish" });
      done = await load.receive((m): m is LoadDone => m.kind === "done", 30_000);
    } finally {
      watch.close();
    }
  } finally {
    await load?.stop();
    await leader?.stop();
    await coordinator?.stop();
    await cluster.close();
  }
  const summary = summarize(samples);
  const ages = summarize(done?.unappliedAgesMs ?? []);
  const toPublication = summarize(inbound);
  return {
    name: agentLoadName(o),
    target: "p99 ≤ 50 ms",
    unit: "ms",
    summary,
    samples,
    settings: {
      agents: o.agents,
      clusters: clusterIds.length,
      agentsPerCluster: perCluster,
      reportInterval: `${o.intervalMs}ms`,
      seconds: o.seconds,
      transports: o.transports,
      coordinator: "child process, default policy",
      method: "probe leader flips Write-Ready each report; time from write to WRITE_READY_CHANGED on WatchLeader",
      probeMissed: missed,
      probeReportToPublication: { median: round(toPublication.median), p99: round(toPublication.p99), max: round(toPublication.max) },
      coordinatorCpu: `${Math.round(coordinatorCpu * 100)}% of one core`,
      coordinatorRssMB: { before: mb(rss.before), connected: mb(rss.connected) },
      memoryPerAgentKB: rss.connected > 0 ? Math.round((rss.connected - rss.before) / o.agents / 102.4) / 10 : undefined,
      loadClientCpuSeconds: round(done?.cpuSeconds),
      reportsSent: done?.reportsSent,
      reportsPerSecondWhileMeasuring: done ? Math.round(done.reportsSentWhileMeasuring / o.seconds) : undefined,
      streamErrors: done?.streamErrors,
      snapshotChecks: done?.checks,
      snapshotChecksWithReportOver50msNotInView: done?.lateOver50ms,
      unappliedReportAgeAtSnapshot: { median: round(ages.median), p99: round(ages.p99), max: round(ages.max) },
    },
    pass: summary.p99 <= 50 && missed === 0,
  };
}

/** The result's name, also for a run that failed before it measured anything. */
export function agentLoadName(o: AgentLoadOptions): string {
  const spread = o.clusters && o.clusters > 1 ? `, ${o.clusters} clusters × ${Math.ceil(o.agents / o.clusters)}` : "";
  return `${o.label ? `${o.label}: ` : ""}${o.agents} agents${spread} × ${1000 / o.intervalMs}/s: report → view (probe)`;
}

async function lockDatabaseId(databaseUrl: string): Promise<string> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const id = await readDatabaseIdentity(client);
    return `${id.systemIdentifier}/tl${id.timeline}`;
  } finally {
    await client.end();
  }
}

const mb = (bytes: number) => Math.round(bytes / 1024 / 102.4) / 10;
const round = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? undefined : Math.round(x * 10) / 10);

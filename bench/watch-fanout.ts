import { waitFor } from "../core/clock.js";
import { CALLER_HEADER } from "../core/metadata.js";
import { DEFAULT_CLUSTER_ID } from "../db/identifiers.js";
import { HaAdminService } from "../gen/autonomy/ha/v1/admin_pb.js";
import { clientFor } from "../rpc/client.js";
import { startPgCluster } from "../pgcluster/index.js";
import { ScriptedAgent } from "../test/coordinator/support/scripted-agent.js";
import type { Collected, WatchIn, WatchOut } from "./load/watch-client.js";
import { LoadChild } from "./support/child.js";
import { CoordinatorProcess } from "./support/coordinator-process.js";
import { summarize, type BenchResult } from "./stats.js";

export interface WatchFanoutOptions {
  readonly streams: number;
  /** Client processes; the streams are split evenly. */
  readonly processes: number;
  /** HTTP/2 connections per client process. */
  readonly transports: number;
  /** Leader changes (planned failovers), each one sample per stream. */
  readonly changes: number;
}

type Child = LoadChild<WatchIn, WatchOut>;

/**
 * `streams` WatchLeader streams on one coordinator process, opened by a few
 * client processes over raw HTTP/2 (see load/raw-watch.ts: the clients share
 * the machine's two cores with the coordinator and must not be the bottleneck);
 * a planned failover between two scripted agents changes the leader. Each
 * stream's latency is its arrival of the LEADER_CHANGED event minus the
 * event's `at`, the coordinator's publication time.
 */
export async function watchFanoutBench(o: WatchFanoutOptions): Promise<BenchResult> {
  const cluster = await startPgCluster({ standbys: 0 });
  const agents: ScriptedAgent[] = [];
  const children: Child[] = [];
  let coordinator: CoordinatorProcess | undefined;
  const latencies: number[] = [];
  const rounds: number[][] = [];
  const firstEvents: number[] = [];
  const sequences = new Set<string>();
  const spreads: number[] = [];
  const cpu: number[] = [];
  const clientCpu: number[] = [];
  let missing = 0;
  let opened = 0;
  let wrongHolder = 0;
  const rpcs: number[] = [];
  try {
    // No standing designation: the scripted follower would poll the lock every
    // 5 ms for a minute, load that has nothing to do with the fan-out.
    coordinator = await CoordinatorProcess.start(cluster.primary.url(), ["--no-designate-successor"]);
    const url = coordinator.url;
    for (const nodeId of ["wf-node-1", "wf-node-2"]) {
      agents.push(await new ScriptedAgent({ nodeId, coordinatorUrl: url, databaseUrl: cluster.primary.url(), clusterId: DEFAULT_CLUSTER_ID, schema: "public", reportIntervalMs: 200 }).start());
    }
    await waitFor(() => agents.some((a) => a.isLeader), { timeoutMs: 10_000, what: "a leader" });

    const perChild = Math.ceil(o.streams / o.processes);
    for (let i = 0; i < o.processes; i++) children.push(LoadChild.start<WatchIn, WatchOut>(`watch-client-${i + 1}`, new URL("./load/watch-client.ts", import.meta.url)));
    children.forEach((c, i) => c.send({ kind: "open", url, streams: Math.min(perChild, o.streams - i * perChild), transports: o.transports }));
    for (const c of children) {
      const m = await c.receive((m): m is Extract<WatchOut, { kind: "opened" }> => m.kind === "opened", 120_000);
      opened += m.open;
    }

    const admin = clientFor(HaAdminService, url, { metadata: { [CALLER_HEADER]: "bench" }, timeoutMs: 30_000 });
    for (let round = 1; round <= o.changes; round++) {
      await waitFor(async () => (await admin.getStatus({})).leader?.writeReady, { timeoutMs: 20_000, intervalMs: 50, what: "a Write-Ready leader" });
      for (const c of children) c.send({ kind: "arm", round });
      await Promise.all(children.map((c) => c.receive((m): m is Extract<WatchOut, { kind: "armed" }> => m.kind === "armed" && m.round === round, 10_000)));
      const cpuBefore = coordinator.cpuSeconds();
      const startedAt = performance.now();
      const r = await admin.triggerFailover({ operator: "bench", reason: "watch fan-out benchmark" });
      rpcs.push(performance.now() - startedAt);
      const got = await Promise.all(children.map((c) => collect(c, round)));
      cpu.push(coordinator.cpuSeconds() - cpuBefore);
      const arrivals = got.flatMap((g) => g.arrivalsMs);
      const first = Math.min(...arrivals);
      rounds.push(got.flatMap((g) => g.latenciesMs));
      clientCpu.push(got.reduce((sum, g) => sum + g.cpuSeconds, 0));
      for (const g of got) {
        latencies.push(...g.latenciesMs);
        firstEvents.push(...g.firstEventLatenciesMs);
        if (g.sequence.length > 0) sequences.add(g.sequence.join(" → "));
        spreads.push(...g.arrivalsMs.map((a) => a - first));
        missing += g.missing;
        wrongHolder += g.holders.filter((h) => h !== r.newHolder).length;
      }
      // Let the old leader's resign and the new term's reports settle.
      await new Promise((res) => setTimeout(res, 1_000));
    }
  } finally {
    await Promise.all(children.map((c) => c.stop()));
    await Promise.all(agents.map((a) => a.stop()));
    await coordinator?.stop();
    await cluster.close();
  }
  const summary = summarize(latencies);
  // One entry per change: the first one also pays for cold code (JIT) in the
  // coordinator and the clients, which a long-running server pays once.
  const perChange = rounds.map((r) => {
    const s = summarize(r);
    return { median: round(s.median), p99: round(s.p99), max: round(s.max) };
  });
  const spread = summarize(spreads);
  const first = summarize(firstEvents);
  return {
    name: `${o.streams} WatchLeader streams: leader change → arrival`,
    target: "p99 ≤ 50 ms",
    unit: "ms",
    summary,
    samples: latencies,
    settings: {
      streams: o.streams,
      streamsOpened: opened,
      client: "node:http2 with gRPC framing by hand, identical frames decoded once per process (bench/load/raw-watch.ts)",
      clientProcesses: o.processes,
      connectionsPerProcess: o.transports,
      changes: o.changes,
      measuredFrom: "the LEADER_CHANGED event's `at` (coordinator publication time, ms resolution)",
      measuredTo: "the client's 'data' callback for the stream, before decoding",
      clock: "one machine's wall clock: the coordinator's Date at publication, the client's performance.timeOrigin + performance.now()",
      samples: latencies.length,
      missing,
      wrongHolder,
      eventsPerChange: [...sequences],
      perChange,
      firstEventOfChange: { median: round(first.median), p99: round(first.p99), max: round(first.max) },
      spreadFromFirstArrival: { median: round(spread.median), p99: round(spread.p99), max: round(spread.max) },
      coordinatorCpuSecondsPerChange: cpu.map(round),
      // All client processes together, from arming to their last stream's arrival.
      clientCpuSecondsPerChange: clientCpu.map((x) => Math.round(x * 1000) / 1000),
      triggerFailoverMs: rpcs.map(round),
    },
    pass: summary.p99 <= 50 && missing === 0 && opened === o.streams,
  };
}

/** The child's samples for the round: at once when all its streams saw it, else what it has after 10 s. */
async function collect(c: Child, round: number): Promise<Collected> {
  const isRound = (m: WatchOut): m is Collected => m.kind === "collected" && m.round === round;
  try {
    return await c.receive(isRound, 10_000);
  } catch {
    c.send({ kind: "collect", round });
    return c.receive(isRound, 10_000);
  }
}

const round = (x: number) => Math.round(x * 10) / 10;

import http2 from "node:http2";
import pg from "pg";
import { waitFor } from "../core/clock.js";
import { DEFAULT_CLUSTER_ID } from "../db/identifiers.js";
import { readLockWaiters } from "../db/lock-oversight.js";
import { startPgCluster } from "../pgcluster/index.js";
import { AgentProcess, writeReadyAgents } from "../test/support/agents.js";
import { testCredentials } from "../test/support/pki.js";
import { rawWatchLeader } from "./load/raw-watch.js";
import { CoordinatorProcess } from "./support/coordinator-process.js";
import { summarize, type BenchResult } from "./stats.js";

/** How the followers are arranged when the leader dies. */
export type CrashSetup =
  /** A coordinator as deployed: it designates one follower, which queues on the lock; the others only try it as a backstop. */
  | "coordinator"
  /** No coordinator: every follower queues on the lock. */
  | "alone";

/**
 * SIGKILL of the leader's agent → the new leader's Write-Ready, seen on the
 * survivors' WatchLeader streams (no polling between the two instants). The
 * streams are read with gRPC framing by hand over node:http2 (as the fan-out
 * bench reads them): a full client library's own cost per message would be
 * measured as ours, where the floor's candidates report over IPC.
 * Each crash comes once the cluster is steady: one Write-Ready leader and a
 * follower queued on the lock (with a coordinator: the one it designated).
 */
export async function agentCrashBench(rounds: number, setup: CrashSetup): Promise<BenchResult> {
  const cluster = await startPgCluster({ standbys: 0 });
  const db = new pg.Client({ connectionString: cluster.primary.url() });
  let coordinator: CoordinatorProcess | undefined;
  const agents: AgentProcess[] = [];
  const samples: number[] = [];
  try {
    await db.connect();
    coordinator = setup === "coordinator" ? await CoordinatorProcess.start(cluster.primary.url()) : undefined;
    const start = (nodeId: string) => AgentProcess.start({ nodeId, databaseUrl: cluster.primary.url(), ...(coordinator ? { coordinatorUrl: coordinator.url } : {}) });
    agents.push(...(await Promise.all(["cp-node-1", "cp-node-2", "cp-node-3"].map(start))));
    for (let round = 0; round < rounds; round++) {
      const leader = await waitFor(async () => {
        const ready = await writeReadyAgents(agents);
        return ready.length === 1 ? ready[0] : undefined;
      }, { timeoutMs: 20_000, what: "one leader" });
      await waitFor(async () => (await readLockWaiters(db, DEFAULT_CLUSTER_ID)).some((w) => w !== leader.nodeId), { timeoutMs: 20_000, intervalMs: 20, what: "a follower queued on the lock" });
      const survivors = agents.filter((a) => a !== leader);
      const tls = testCredentials().tls;
      const sessions = survivors.map((s) => http2.connect(s.url, tls ? { ca: tls.ca, cert: tls.cert, key: tls.key } : {}).on("error", () => undefined));
      let killedAt = 0;
      const snapshots = new Set<string>();
      const seen = new Promise<number>((resolve) => {
        survivors.forEach((s, i) =>
          rawWatchLeader(
            sessions[i]!,
            (e, arrivalMs) => {
              snapshots.add(s.nodeId);
              if (killedAt && e.leader?.holderId === s.nodeId && e.leader.writeReady) resolve(arrivalMs - performance.timeOrigin);
            },
            () => undefined,
          ),
        );
      });
      // Every stream has delivered its snapshot before the crash.
      await waitFor(() => snapshots.size === survivors.length, { timeoutMs: 10_000, intervalMs: 5, what: "the survivors' WatchLeader snapshots" });
      killedAt = performance.now();
      await leader.process.kill();
      const readyAt = await seen;
      for (const session of sessions) session.close();
      samples.push(readyAt - killedAt);
      // The crashed node comes back as a follower.
      agents.splice(agents.indexOf(leader), 1);
      agents.push(await start(leader.nodeId));
    }
  } finally {
    await Promise.all(agents.map((a) => a.process.stop()));
    await coordinator?.stop();
    await db.end().catch(() => undefined);
    await cluster.close();
  }
  return {
    name: setup === "coordinator" ? "agent crash → Write-Ready (coordinator: designated successor)" : "agent crash → Write-Ready (no coordinator: followers queued on the lock)",
    target: "median ≤ 250 ms",
    unit: "ms",
    summary: summarize(samples),
    samples,
    settings: {
      rounds,
      setup,
      agentTimings: "FAST_TIMINGS (heartbeat 200ms, lease 1500ms, campaign 100ms)",
      coordinator: coordinator ? "child process, default policy (--designate-successor)" : "none",
      steadyBeforeEachCrash: "one Write-Ready leader and a follower queued on the lock (pg_locks)",
      observedWith: "node:http2 with gRPC framing by hand (bench/load/raw-watch.ts)",
    },
    pass: summarize(samples).median <= 250,
  };
}

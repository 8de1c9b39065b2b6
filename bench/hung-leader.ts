import { spawn, type ChildProcess } from "node:child_process";
import os from "node:os";
import pg from "pg";
import { waitFor } from "../core/clock.js";
import { startPgCluster, type PgCluster } from "../pgcluster/index.js";
import { AgentProcess, writeReadyAgents } from "../test/support/agents.js";
import { CoordinatorProcess } from "./support/coordinator-process.js";
import { summarize, type BenchResult } from "./stats.js";

/** The agents' and the coordinator's default timings, over the tests' fast ones (AgentProcess adds those first). */
const DEFAULT_AGENT_TIMINGS = ["--heartbeat-interval", "250ms", "--lease", "1s", "--takeover-after", "2s", "--campaign-interval", "200ms", "--probe-interval", "1s", "--report-interval", "500ms"];

/**
 * A hung leader and a loaded one, at the default timings (lease 1s,
 * takeover-after 2s, failure-timeout 2.5s), three agents and a coordinator:
 *  - replacement: SIGSTOP of the leader's agent (its socket stays open, as in
 *    a partition or a frozen VM) → another agent Write-Ready, polled from
 *    outside every 10 ms;
 *  - false failovers: leader changes while the cluster runs under CPU hogs
 *    at five times the cores, and while the leader's agent is stalled for
 *    500 ms (SIGSTOP/SIGCONT, a GC-like pause) every 2 s. Each should be 0.
 */
export async function hungLeaderBench(rounds: number, loadSeconds = 20): Promise<BenchResult[]> {
  const cluster = await startPgCluster({ standbys: 0 });
  let coordinator: CoordinatorProcess | undefined;
  const agents: AgentProcess[] = [];
  const replaced: number[] = [];
  const changes = { hogs: 0, stalls: 0 };
  try {
    coordinator = await CoordinatorProcess.start(cluster.primary.url());
    for (const [i, nodeId] of ["cp-node-1", "cp-node-2", "cp-node-3"].entries()) {
      agents.push(await AgentProcess.start({ nodeId, databaseUrl: cluster.primary.url(), coordinatorUrl: coordinator.url, priority: 300 - 100 * i, args: DEFAULT_AGENT_TIMINGS }));
    }
    const oneLeader = () =>
      waitFor(async () => {
        const ready = await writeReadyAgents(agents);
        return ready.length === 1 ? ready[0] : undefined;
      }, { timeoutMs: 30_000, what: "one Write-Ready leader" });

    for (let round = 0; round < rounds; round++) {
      const leader = await oneLeader();
      const stoppedAt = performance.now();
      leader.process.signal("SIGSTOP");
      const others = agents.filter((a) => a !== leader);
      await waitFor(async () => (await writeReadyAgents(others)).length === 1, { timeoutMs: 30_000, intervalMs: 10, what: "another agent Write-Ready" });
      replaced.push(performance.now() - stoppedAt);
      leader.process.signal("SIGCONT");
      // The old leader fenced itself by its own clock; it comes back as a follower.
      await waitFor(async () => (await leader.writeReady())?.ready === false, { timeoutMs: 10_000, what: `${leader.nodeId} to see it no longer leads` });
    }

    await oneLeader();
    changes.hogs = await leaderChangesDuring(cluster, async () => {
      const hogs = cpuHogs(5 * os.cpus().length);
      await new Promise((r) => setTimeout(r, loadSeconds * 1000)).finally(() => hogs.forEach((h) => h.kill("SIGKILL")));
    });
    const leader = await oneLeader();
    changes.stalls = await leaderChangesDuring(cluster, async () => {
      const until = performance.now() + loadSeconds * 1000;
      while (performance.now() < until) {
        leader.process.signal("SIGSTOP");
        await new Promise((r) => setTimeout(r, 500));
        leader.process.signal("SIGCONT");
        await new Promise((r) => setTimeout(r, 1_500));
      }
    });
  } finally {
    for (const a of agents) a.process.signal("SIGCONT");
    await Promise.all(agents.map((a) => a.process.stop()));
    await coordinator?.stop();
    await cluster.close();
  }
  const settings = { rounds, lease: "1s", heartbeatInterval: "250ms", takeoverAfter: "2s", failureTimeout: "2500ms", coordinator: true, loadSeconds, cpuHogs: 5 * os.cpus().length, stall: "500ms every 2s" };
  const count = (name: string, n: number): BenchResult => ({ name, target: "0 (count)", unit: "ms", summary: summarize([n]), samples: [n], settings, pass: n === 0 });
  return [
    { name: "hung leader (SIGSTOP) → another Write-Ready", target: "median ≤ 3000 ms", unit: "ms", summary: summarize(replaced), samples: replaced, settings, pass: summarize(replaced).median <= 3_000 },
    count(`false failovers under ${5 * os.cpus().length} CPU hogs for ${loadSeconds}s (count)`, changes.hogs),
    count(`false failovers under 500 ms leader stalls every 2 s for ${loadSeconds}s (count)`, changes.stalls),
  ];
}

/** How many times the epoch changed while `load` ran (read from the database before and after). */
async function leaderChangesDuring(cluster: PgCluster, load: () => Promise<void>): Promise<number> {
  const epoch = async () => {
    const c = new pg.Client({ connectionString: cluster.primary.url() });
    await c.connect();
    try {
      return Number((await c.query<{ e: string }>("SELECT coalesce(max(epoch), 0) AS e FROM leader_epochs")).rows[0]!.e);
    } finally {
      await c.end();
    }
  };
  const before = await epoch();
  await load();
  return (await epoch()) - before;
}

/** Busy loops, each in its own process. */
function cpuHogs(n: number): ChildProcess[] {
  return Array.from({ length: n }, () => spawn(process.execPath, ["-e", "for(;;){}"], { stdio: "ignore" }));
}

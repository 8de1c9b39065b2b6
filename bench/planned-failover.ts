import { waitFor } from "../core/clock.js";
import { CALLER_HEADER } from "../core/metadata.js";
import { HaAdminService } from "../gen/autonomy/ha/v1/admin_pb.js";
import { clientFor } from "../rpc/client.js";
import { startPgCluster } from "../pgcluster/index.js";
import { AgentProcess } from "../test/support/agents.js";
import { testCredentials } from "../test/support/pki.js";
import { CoordinatorProcess } from "./support/coordinator-process.js";
import { LeaderWatch } from "./support/leader-watch.js";
import { summarize, type BenchResult } from "./stats.js";

/**
 * Planned failover through the coordinator: a real coordinator process, three
 * real agent processes and PostgreSQL. The write gap is measured on the
 * agents' own WatchLeader streams, which publish the moment the agent's
 * Write-Ready changes: from the old leader's event that it no longer is
 * Write-Ready to the new leader's event that it is. (The coordinator's stream
 * would add the agents' report path to both ends.) Negative means overlap:
 * the new leader said Write-Ready before the old one said it stopped.
 */
export async function plannedFailoverBench(rounds: number): Promise<BenchResult[]> {
  const cluster = await startPgCluster({ standbys: 0 });
  const agents: AgentProcess[] = [];
  let coordinator: CoordinatorProcess | undefined;
  const gaps: number[] = [];
  const rpcs: number[] = [];
  try {
    coordinator = await CoordinatorProcess.start(cluster.primary.url());
    const url = coordinator.url;
    agents.push(...(await Promise.all(["pf-node-1", "pf-node-2", "pf-node-3"].map((nodeId) => AgentProcess.start({ nodeId, databaseUrl: cluster.primary.url(), coordinatorUrl: url })))));
    const admin = clientFor(HaAdminService, url, { metadata: { [CALLER_HEADER]: "bench" }, timeoutMs: 30_000, credentials: testCredentials() });

    for (let round = 0; round < rounds; round++) {
      const oldLeader = await waitFor(
        async () => {
          const s = await admin.getStatus({});
          const ready = s.leader?.writeReady && s.nodes.filter((n) => n.connected).length === agents.length;
          return ready ? s.leader!.holderId : undefined;
        },
        { timeoutMs: 20_000, intervalMs: 50, what: "a Write-Ready leader with all agents connected" },
      );
      const watches = new Map(agents.map((a) => [a.nodeId, LeaderWatch.open(a.url)]));
      try {
        await Promise.all([...watches.values()].map((w) => w.ready()));
        const startedAt = performance.now();
        const r = await admin.triggerFailover({ operator: "bench", reason: "planned failover benchmark" });
        rpcs.push(performance.now() - startedAt);
        const [down, up] = await Promise.all([
          watches.get(oldLeader)!.next((e) => !(e.leader?.holderId === oldLeader && e.leader.writeReady), startedAt, 10_000),
          watches.get(r.newHolder)!.next((e) => e.leader?.holderId === r.newHolder && e.leader.writeReady, startedAt, 10_000),
        ]);
        gaps.push(up.at - down.at);
      } finally {
        for (const w of watches.values()) w.close();
      }
      // The old leader sits out its post-resign quiet period and the
      // coordinator re-designates a successor before the next round.
      await new Promise((r) => setTimeout(r, 1_200));
    }
  } finally {
    await Promise.all(agents.map((a) => a.process.stop()));
    await coordinator?.stop();
    await cluster.close();
  }
  const settings = { rounds, agents: 3, coordinator: "child process, default policy", agentTimings: "FAST_TIMINGS (report 200ms, campaign 100ms, lease 1500ms)", observedOn: "agents' WatchLeader streams" };
  return [
    {
      name: "planned failover write gap (old Write-Ready off → new on)",
      target: "median ≤ 100 ms",
      unit: "ms",
      summary: summarize(gaps),
      samples: gaps,
      settings,
      pass: summarize(gaps).median <= 100,
    },
    { name: "TriggerFailover RPC latency", target: "-", unit: "ms", summary: summarize(rpcs), samples: rpcs, settings, pass: undefined },
  ];
}

import { LeaderService } from "../gen/autonomy/ha/v1/leader_pb.js";
import { waitFor } from "../core/clock.js";
import { clientFor } from "../rpc/client.js";
import { startPgCluster } from "../pgcluster/index.js";
import { AgentProcess, writeReadyAgents } from "../test/support/agents.js";
import { testCredentials } from "../test/support/pki.js";
import { summarize, type BenchResult } from "./stats.js";

/**
 * SIGKILL of the leader's agent → the new leader's Write-Ready, seen on the
 * survivors' WatchLeader streams (no polling between the two instants).
 * With `successor`, one follower waits on the lock (as the coordinator
 * arranges); without, followers try the lock on their campaign interval.
 */
export async function agentCrashBench(rounds: number, successor: boolean): Promise<BenchResult> {
  const cluster = await startPgCluster({ standbys: 0 });
  const agents: AgentProcess[] = [];
  const successors = new Set<string>();
  const start = (nodeId: string, asSuccessor: boolean) => {
    if (asSuccessor) successors.add(nodeId);
    return AgentProcess.start({ nodeId, databaseUrl: cluster.primary.url(), successor: asSuccessor });
  };
  const samples: number[] = [];
  try {
    agents.push(...(await Promise.all(["cp-node-1", "cp-node-2", "cp-node-3"].map((id, i) => start(id, successor && i === 1)))));
    for (let round = 0; round < rounds; round++) {
      const leader = await waitFor(async () => {
        const ready = await writeReadyAgents(agents);
        return ready.length === 1 ? ready[0] : undefined;
      }, { timeoutMs: 20_000, what: "one leader" });
      const survivors = agents.filter((a) => a !== leader);
      const watch = new AbortController();
      let killedAt = 0;
      let newLeader: string | undefined;
      const seen = new Promise<number>((resolve) => {
        for (const s of survivors) {
          void (async () => {
            for await (const e of clientFor(LeaderService, s.url, { credentials: testCredentials() }).watchLeader({}, { signal: watch.signal })) {
              if (killedAt && e.leader?.holderId === s.nodeId && e.leader.writeReady) resolve(performance.now());
            }
          })().catch(() => undefined);
        }
      });
      // Let every stream deliver its snapshot before the crash.
      await new Promise((r) => setTimeout(r, 200));
      killedAt = performance.now();
      await leader.process.kill();
      const readyAt = await seen;
      newLeader = (await writeReadyAgents(survivors))[0]?.nodeId;
      watch.abort();
      samples.push(readyAt - killedAt);
      agents.splice(agents.indexOf(leader), 1);
      successors.delete(leader.nodeId);
      // The crashed node comes back as a follower; when the successor has just
      // become leader, the returning node is the next designated successor.
      const successorWaiting = agents.some((a) => successors.has(a.nodeId) && a.nodeId !== newLeader);
      agents.push(await start(leader.nodeId, successor && !successorWaiting));
    }
  } finally {
    await Promise.all(agents.map((a) => a.process.stop()));
    await cluster.close();
  }
  return {
    name: successor ? "agent crash → Write-Ready (designated successor)" : "agent crash → Write-Ready (try-lock loop)",
    target: "median ≤ 250 ms",
    unit: "ms",
    summary: summarize(samples),
    samples,
    settings: { rounds, campaignInterval: "100ms", heartbeatInterval: "200ms", lease: "1500ms", successor },
    pass: summarize(samples).median <= 250,
  };
}

import { AuditType } from "../coordinator/audit/index.js";
import { DEFAULT_CLUSTER_ID } from "../db/identifiers.js";
import { LeaderEventKind } from "../gen/autonomy/ha/v1/leader_pb.js";
import { waitFor } from "../core/clock.js";
import { startPgCluster } from "../pgcluster/index.js";
import { ScriptedAgent } from "../test/coordinator/support/scripted-agent.js";
import { AuditTail } from "./support/audit-tail.js";
import { CoordinatorProcess } from "./support/coordinator-process.js";
import { LeaderWatch } from "./support/leader-watch.js";
import { summarize, type BenchResult } from "./stats.js";

/** A lock database id no real server has: the rogue claims a term on "another primary". */
const OTHER_PRIMARY = "7999999999999999999/tl7";

/**
 * The report that reveals a split-brain → the coordinator's finding, seen two
 * ways: the SPLIT_BRAIN_DETECTED event on a WatchLeader stream, and the
 * `ha.split_brain.detected` line appearing in audit.jsonl.
 *
 * A real leader (scripted agent holding the advisory lock) runs under a real
 * coordinator process. A second scripted agent, until then a plain follower,
 * sends one report claiming the lock and Write-Ready for the next epoch on a
 * different lock database: what a node on a promoted standby would say. The
 * clock starts as that report is written to its stream. Each round then
 * retracts the claim and waits for the resolution before the next.
 */
export async function splitBrainBench(rounds: number): Promise<BenchResult[]> {
  const cluster = await startPgCluster({ standbys: 0 });
  const agents: ScriptedAgent[] = [];
  let coordinator: CoordinatorProcess | undefined;
  const onStream: number[] = [];
  const inAudit: number[] = [];
  try {
    coordinator = await CoordinatorProcess.start(cluster.primary.url());
    const options = { coordinatorUrl: coordinator.url, databaseUrl: cluster.primary.url(), clusterId: DEFAULT_CLUSTER_ID, schema: "public", reportIntervalMs: 200 };
    const leader = new ScriptedAgent({ nodeId: "sb-leader", ...options });
    // nofailover: the coordinator never designates the rogue as successor, so it only ever sends what we script.
    const rogue = new ScriptedAgent({ nodeId: "sb-rogue", nofailover: true, ...options });
    agents.push(leader, rogue);
    await leader.start();
    // The coordinator finds the lock free and orders the only candidate to campaign.
    await waitFor(() => leader.isLeader, { timeoutMs: 10_000, what: "sb-leader to lead" });
    await rogue.start();

    const watch = LeaderWatch.open(coordinator.url);
    const audit = new AuditTail(coordinator.auditDir);
    try {
      await watch.ready();
      await audit.catchUp();
      await settle();
      for (let round = 0; round < rounds; round++) {
        const sentAt = performance.now();
        rogue.overrides = { role: "leader", sessionLockHeld: true, writeReady: true, writeReadyReason: "", epoch: leader.epoch + 1, lockDatabaseId: OTHER_PRIMARY, lockDatabase: { systemIdentifier: "7999999999999999999", timeline: 7 } };
        void rogue.report();
        const [event, line] = await Promise.all([
          watch.next((e) => e.kind === LeaderEventKind.SPLIT_BRAIN_DETECTED, sentAt, 5_000),
          audit.next(AuditType.SplitBrainDetected, sentAt, 5_000),
        ]);
        onStream.push(event.at - sentAt);
        inAudit.push(line.at - sentAt);

        const retractedAt = performance.now();
        rogue.overrides = {};
        void rogue.report();
        await Promise.all([
          watch.next((e) => e.kind === LeaderEventKind.SPLIT_BRAIN_RESOLVED, retractedAt, 5_000),
          audit.next(AuditType.SplitBrainResolved, retractedAt, 5_000),
        ]);
        await settle();
      }
    } finally {
      watch.close();
      audit.close();
    }
  } finally {
    await Promise.all(agents.map((a) => a.stop()));
    await coordinator?.stop();
    await cluster.close();
  }
  const settings = { rounds, coordinator: "child process, default policy", reveal: "second stream reports lock + Write-Ready on another lock database", reportInterval: "200ms" };
  const result = (name: string, samples: number[]): BenchResult => ({
    name,
    target: "median ≤ 100 ms",
    unit: "ms",
    summary: summarize(samples),
    samples,
    settings,
    pass: summarize(samples).median <= 100,
  });
  return [
    result("split-brain report → SPLIT_BRAIN_DETECTED on WatchLeader", onStream),
    result("split-brain report → ha.split_brain.detected in audit.jsonl", inAudit),
  ];
}

/** Lets in-flight reports and the database poll pass, so rounds do not overlap. */
function settle(): Promise<void> {
  return new Promise((r) => setTimeout(r, 300));
}

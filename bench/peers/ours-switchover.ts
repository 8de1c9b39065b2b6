import pg from "pg";
import { waitFor } from "../../core/clock.js";
import { CALLER_HEADER } from "../../core/metadata.js";
import { HaAdminService } from "../../gen/autonomy/ha/v1/admin_pb.js";
import { LeaderService } from "../../gen/autonomy/ha/v1/leader_pb.js";
import { clientFor } from "../../rpc/client.js";
import { startPgCluster } from "../../pgcluster/index.js";
import { AgentProcess } from "../../test/support/agents.js";
import { testCredentials } from "../../test/support/pki.js";
import { CoordinatorProcess } from "../support/coordinator-process.js";
import { CREATE_WRITES_TABLE, firstCommit, lastCommit, WriteLoop, WRITES_TABLE, type WriteStatements } from "./write-loop.js";

/** Our fenced write: assert_epoch in the write's own transaction. */
const assertEpochWrite: WriteStatements = async (client, node, epoch) => {
  await client.query("BEGIN");
  try {
    await client.query("SELECT assert_epoch($1)", [epoch]);
    await client.query(`INSERT INTO ${WRITES_TABLE} (node, epoch) VALUES ($1, $2)`, [node, epoch]);
    await client.query("COMMIT");
  } catch (err) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw err;
  }
};

/**
 * `autonomy ha failover trigger` (the TriggerFailover RPC it sends) under a
 * real write load: a coordinator and three agents, each node's application
 * following its own agent's WatchLeader stream and writing back to back while
 * that says this node holds the lock and is Write-Ready. The sample is the
 * write gap on committed fenced writes: the old term's last → the new term's
 * first.
 */
export async function oursSwitchoverBench(rounds: number): Promise<{ gaps: number[]; refused: string[] }> {
  const cluster = await startPgCluster({ standbys: 0 });
  const agents: AgentProcess[] = [];
  const writers: WriteLoop[] = [];
  const watching = new AbortController();
  let coordinator: CoordinatorProcess | undefined;
  const gaps: number[] = [];
  const refused: string[] = [];
  try {
    const url = cluster.primary.url();
    const setup = new pg.Client({ connectionString: url });
    await setup.connect();
    await setup.query(CREATE_WRITES_TABLE);
    await setup.end();
    coordinator = await CoordinatorProcess.start(url);
    agents.push(...(await Promise.all(["cp-node-1", "cp-node-2", "cp-node-3"].map((nodeId) => AgentProcess.start({ nodeId, databaseUrl: url, coordinatorUrl: coordinator!.url })))));
    for (const a of agents) {
      const w = new WriteLoop(a.nodeId, url, assertEpochWrite).start();
      writers.push(w);
      void (async () => {
        for await (const e of clientFor(LeaderService, a.url, { credentials: testCredentials() }).watchLeader({}, { signal: watching.signal })) {
          const mine = e.leader?.holderId === a.nodeId && e.leader.writeReady;
          w.setPermit(mine ? { epoch: Number(e.leader!.epoch) } : undefined);
        }
      })().catch(() => w.setPermit(undefined));
    }
    const admin = clientFor(HaAdminService, coordinator.url, { metadata: { [CALLER_HEADER]: "bench" }, timeoutMs: 30_000, credentials: testCredentials() });
    for (let round = 0; round < rounds; round++) {
      const oldLeader = await waitFor(
        async () => {
          const s = await admin.getStatus({});
          const ready = s.leader?.writeReady && s.nodes.filter((n) => n.connected).length === agents.length;
          const writing = writers.some((w) => w.node === s.leader?.holderId && (w.commits.at(-1)?.committedAt ?? 0) > performance.now() - 100);
          return ready && writing ? s.leader!.holderId : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 50, what: "a Write-Ready leader writing, all agents connected" },
      );
      const startedAt = performance.now();
      let newHolder: string;
      try {
        newHolder = (await admin.triggerFailover({ operator: "bench", reason: "peers switchover benchmark" })).newHolder;
      } catch (err) {
        refused.push((err as Error).message);
        process.stderr.write(`bench:peers: ours switchover ${round + 1}/${rounds} refused: ${(err as Error).message}\n`);
        await new Promise((r) => setTimeout(r, 1_500));
        continue;
      }
      const first = await waitFor(() => firstCommit(writers, startedAt, (c) => c.node === newHolder), { timeoutMs: 30_000, intervalMs: 2, what: `a fenced write by ${newHolder}` });
      const last = lastCommit(writers, first.committedAt, (c) => c.node === oldLeader);
      if (!last) throw new Error(`no fenced write by ${oldLeader} before the failover`);
      gaps.push(first.committedAt - last.committedAt);
      process.stderr.write(`bench:peers: ours switchover ${round + 1}/${rounds}: ${oldLeader} → ${newHolder}, write gap ${(first.committedAt - last.committedAt).toFixed(1)} ms\n`);
      // The old leader sits out its post-resign quiet period; the coordinator designates a successor again.
      await new Promise((r) => setTimeout(r, 1_200));
    }
  } finally {
    watching.abort();
    await Promise.all(writers.map((w) => w.stop()));
    await Promise.all(agents.map((a) => a.process.stop()));
    await coordinator?.stop();
    await cluster.close();
  }
  return { gaps, refused };
}

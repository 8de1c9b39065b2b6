import pg from "pg";
import { waitFor } from "../core/clock.js";
import { startPgCluster } from "../pgcluster/index.js";
import { AgentProcess, writeReadyAgents } from "../test/support/agents.js";
import { summarize, type BenchResult } from "./stats.js";

/**
 * A primary crash and a `pg_ctl promote` of its standby, with three agents on
 * a multi-host URL and no coordinator: SIGKILL of the primary's postmaster →
 * the standby promoted (pg_promote, waited for) → the first fenced write
 * (assert_epoch in its own transaction) committed on the promoted server.
 * Two figures: end to end (includes PostgreSQL's own promotion), and our part
 * (promotion done → first accepted fenced write). A fresh pair each round.
 */
export async function databaseFailoverBench(rounds: number): Promise<BenchResult[]> {
  const endToEnd: number[] = [];
  const ours: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const cluster = await startPgCluster({ standbys: 1 });
    const [p, s] = [cluster.primary, cluster.standby];
    const url = `postgres://postgres@${p.host}:${p.port},${s.host}:${s.port}/postgres?target_session_attrs=read-write`;
    const agents: AgentProcess[] = [];
    try {
      agents.push(...(await Promise.all(["cp-node-1", "cp-node-2", "cp-node-3"].map((nodeId) => AgentProcess.start({ nodeId, databaseUrl: url })))));
      await waitFor(async () => (await writeReadyAgents(agents)).length === 1, { timeoutMs: 20_000, what: "one leader" });
      const setup = new pg.Client({ connectionString: p.url() });
      await setup.connect();
      await setup.query("CREATE TABLE IF NOT EXISTS bench_writes (epoch bigint, at timestamptz DEFAULT clock_timestamp())");
      await setup.end();
      await s.waitForStreaming();

      const crashedAt = performance.now();
      await p.kill("SIGKILL");
      await s.promote();
      const promotedAt = performance.now();
      const writer = new pg.Client({ connectionString: s.url() });
      await writer.connect();
      try {
        const firstWrite = await waitFor(
          async () => {
            const r = await writer.query<{ epoch: string; holder_id: string | null }>("SELECT epoch, holder_id FROM leadership_state WHERE cluster_id = 'default'");
            const row = r.rows[0];
            if (!row?.holder_id) return undefined;
            try {
              await writer.query("BEGIN");
              await writer.query("SELECT assert_epoch($1)", [row.epoch]);
              await writer.query("INSERT INTO bench_writes (epoch) VALUES ($1)", [row.epoch]);
              await writer.query("COMMIT");
              return performance.now();
            } catch {
              await writer.query("ROLLBACK").catch(() => undefined);
              return undefined;
            }
          },
          { timeoutMs: 30_000, intervalMs: 2, what: "a fenced write on the promoted server" },
        );
        endToEnd.push(firstWrite - crashedAt);
        ours.push(firstWrite - promotedAt);
      } finally {
        await writer.end();
      }
    } finally {
      await Promise.all(agents.map((a) => a.process.stop()));
      await cluster.close();
    }
  }
  const settings = { rounds, agents: 3, coordinator: false, standby: "async, streaming", promotion: "pg_promote(wait)", lease: "1500ms", probeInterval: "200ms" };
  return [
    {
      name: "primary crash + pg_ctl promote → first fenced write (end to end)",
      target: "informational",
      unit: "ms",
      summary: summarize(endToEnd),
      samples: endToEnd,
      settings,
      pass: undefined,
    },
    {
      name: "promotion done → first fenced write on the promoted server (ours)",
      target: "median ≤ 1000 ms",
      unit: "ms",
      summary: summarize(ours),
      samples: ours,
      settings,
      pass: summarize(ours).median <= 1000,
    },
  ];
}

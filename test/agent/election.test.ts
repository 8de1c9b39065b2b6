import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { startPgCluster, type PgCluster } from "../../pgcluster/index.js";
import { waitFor } from "../../core/clock.js";
import { AgentProcess, theOneLeader, writeReadyAgents } from "../support/agents.js";
import { LOCK_CLASS_ID } from "../../db/identifiers.js";

/**
 * The election against a real primary, with agents as real child processes:
 * crashes are SIGKILL, hangs are SIGSTOP.
 */
describe("advisory-lock election with epochs", () => {
  let cluster: PgCluster;
  let agents: AgentProcess[] = [];

  beforeAll(async () => {
    cluster = await startPgCluster({ standbys: 0 });
  });
  afterEach(async () => {
    await Promise.all(agents.map((a) => a.process.stop()));
    agents = [];
    // Each scenario starts from an empty history.
    await cluster.primary.query("DROP TABLE IF EXISTS leadership_state, leader_epochs, autonomy_schema_migrations CASCADE");
  });
  afterAll(async () => {
    await cluster?.close();
  });

  const epochs = () =>
    cluster.primary.query<{ epoch: string; holder_id: string; resigned_at: Date | null; end_reason: string | null }>(
      "SELECT epoch, holder_id, resigned_at, end_reason FROM leader_epochs ORDER BY epoch",
    );
  const lockHolders = () =>
    cluster.primary.query<{ application_name: string }>(
      `SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid)
        WHERE l.locktype = 'advisory' AND l.granted AND l.classid = ${LOCK_CLASS_ID}`,
    );

  async function startAgents(n: number, args: string[] = []): Promise<AgentProcess[]> {
    agents = await Promise.all(
      Array.from({ length: n }, (_, i) => AgentProcess.start({ nodeId: `cp-node-${i + 1}`, databaseUrl: cluster.primary.url(), args })),
    );
    return agents;
  }


  it("three agents racing from a cold start elect exactly one leader with epoch 1", async () => {
    await startAgents(3);
    const leader = await theOneLeader(agents);
    expect((await lockHolders()).map((h) => h.application_name)).toEqual([leader.nodeId]);
    const rows = await epochs();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ epoch: "1", holder_id: leader.nodeId, resigned_at: null });
    // Followers learn the holder from leadership_state on their next observation.
    for (const a of agents) {
      const health = await waitFor(async () => {
        const h = await a.leader();
        return h?.holder_id === leader.nodeId ? h : undefined;
      }, { timeoutMs: 5_000, what: `${a.nodeId} to observe the leader` });
      expect(health).toMatchObject({ holder_id: leader.nodeId, current_epoch: 1, session_lock_held: a === leader });
    }
    const followers = agents.filter((a) => a !== leader);
    for (const f of followers) expect(await f.writeReady()).toEqual({ status: 200, ready: false });
  });

  it("SIGKILL of the leader: another agent becomes Write-Ready and the old epoch is closed as superseded", async () => {
    await startAgents(3);
    const first = await theOneLeader(agents);
    await first.process.kill();
    const rest = agents.filter((a) => a !== first);
    const second = await theOneLeader(rest);
    expect(second).not.toBe(first);
    const rows = await epochs();
    expect(rows.map((r) => [Number(r.epoch), r.holder_id, r.end_reason])).toEqual([
      [1, first.nodeId, "superseded"],
      [2, second.nodeId, null],
    ]);
    expect((await lockHolders()).map((h) => h.application_name)).toEqual([second.nodeId]);
  });

  it("a leader paused past its lease is fenced: its successor takes over and its stale-epoch write is rejected", async () => {
    await startAgents(2, ["--takeover-after", "2500ms"]);
    const first = await theOneLeader(agents);
    const oldEpoch = (await cluster.primary.query<{ epoch: string }>("SELECT epoch FROM leadership_state"))[0]!.epoch;
    first.process.signal("SIGSTOP");
    const other = agents.find((a) => a !== first)!;
    await waitFor(async () => (await other.writeReady())?.ready, { timeoutMs: 20_000, what: "the follower to take over" });
    first.process.signal("SIGCONT");
    await waitFor(async () => (await first.writeReady())?.ready === false, { timeoutMs: 10_000, what: "the old leader to report not ready" });
    expect((await first.leader())?.session_lock_held).toBe(false);

    // The old leader's application tries to write with the epoch it held.
    const app = new pg.Client({ connectionString: cluster.primary.url() });
    await app.connect();
    try {
      await app.query("BEGIN");
      const err = await app.query("SELECT assert_epoch($1)", [oldEpoch]).catch((e: unknown) => e as { code?: string; message?: string });
      expect(err).toMatchObject({ code: "AH001" });
      expect((err as { message: string }).message).toMatch(new RegExp(`stale epoch ${oldEpoch}: current epoch of cluster default is ${Number(oldEpoch) + 1}`));
      await app.query("ROLLBACK");
      const [{ current }] = (await app.query<{ current: string }>("SELECT assert_epoch($1) AS current", [Number(oldEpoch) + 1])).rows as [{ current: string }];
      expect(Number(current)).toBe(Number(oldEpoch) + 1);
    } finally {
      await app.end();
    }
  });

  it("stopping the database drops Write-Ready; after restart there is exactly one leader with a new epoch", async () => {
    await startAgents(2);
    const first = await theOneLeader(agents);
    await cluster.primary.stop("fast");
    await waitFor(async () => (await writeReadyAgents(agents)).length === 0, { timeoutMs: 5_000, what: "no agent Write-Ready" });
    await cluster.primary.start();
    const next = await theOneLeader(agents, 20_000);
    const rows = await epochs();
    expect(rows.map((r) => Number(r.epoch))).toEqual([1, 2]);
    expect(rows[0]).toMatchObject({ holder_id: first.nodeId, end_reason: "superseded" });
    expect(rows[1]).toMatchObject({ holder_id: next.nodeId, resigned_at: null });
    expect(await lockHolders()).toHaveLength(1);
  });
});

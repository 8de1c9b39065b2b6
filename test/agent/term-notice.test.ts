import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { waitFor } from "../../core/clock.js";
import { DEFAULT_CLUSTER_ID } from "../../db/identifiers.js";
import { TERM_CHANNEL } from "../../db/leadership.js";
import { agentsOnOnePrimary, theOneLeader, type AgentProcess } from "../support/agents.js";

/**
 * leadership_state announces a new epoch at commit (migration 8),
 * and followers read it 20 ms later instead of at their next interval. Here the
 * agents read every 30 s, so only the notice can make a follower see a new
 * term within the deadlines below.
 */
describe("term notices", () => {
  const primary = agentsOnOnePrimary();
  let listener: pg.Client | undefined;

  afterEach(async () => {
    await listener?.end();
    listener = undefined;
  });

  const SLOW_READS = ["--probe-interval", "30s", "--takeover-after", "120s"];
  const start = (ids: string[]) => primary.start(ids, { args: SLOW_READS });
  const allSee = (among: AgentProcess[], epoch: number, timeoutMs: number) =>
    waitFor(async () => (await Promise.all(among.map((a) => a.highestEpochSeen()))).every((e) => e === epoch), {
      timeoutMs,
      what: `${among.map((a) => a.nodeId).join(", ")} to have seen epoch ${epoch}`,
    });

  it("a follower sees a new term when it commits, and a forged notice makes it adopt nothing", async () => {
    const agents = await start(["cp-node-1", "cp-node-2", "cp-node-3"]);
    const first = await theOneLeader(agents);
    const firstEpoch = (await first.leader())!.current_epoch;
    await allSee(agents, firstEpoch, 10_000);

    // Forged notices, well-formed and not: each costs a read of the truth, nothing more.
    const forged = [
      JSON.stringify({ schema: "public", cluster_id: DEFAULT_CLUSTER_ID, epoch: 999_999 }),
      JSON.stringify({ schema: "public", cluster_id: DEFAULT_CLUSTER_ID, epoch: firstEpoch + 1, holder_id: "cp-node-9" }),
      "not json",
      "",
    ];
    for (const payload of forged) await primary.db.query("SELECT pg_notify($1, $2)", [TERM_CHANNEL, payload]);

    // The next term opens on a survivor; the other survivor's next read is
    // 30 s away, so seeing the new epoch within 5 s is the notice's doing.
    await first.process.kill();
    const survivors = agents.filter((a) => a !== first);
    const second = await theOneLeader(survivors);
    const secondEpoch = (await second.leader())!.current_epoch;
    expect(secondEpoch).toBe(firstEpoch + 1);
    await allSee(survivors, secondEpoch, 5_000);
    for (const a of survivors) expect((await a.leader())!).toMatchObject({ holder_id: second.nodeId, current_epoch: secondEpoch });
  });

  it("a new term sends one notice; heartbeats and a resign send none", async () => {
    listener = new pg.Client({ connectionString: primary.cluster.primary.url() });
    await listener.connect();
    const notices: string[] = [];
    listener.on("notification", (n) => notices.push(n.payload ?? ""));
    await listener.query(`LISTEN ${TERM_CHANNEL}`);
    // Notices reach a listener in commit order: once a marker sent now has
    // arrived, so has every notice of a transaction committed before it.
    let markers = 0;
    const noticesSoFar = async () => {
      const marker = `marker ${++markers}`;
      await primary.db.query("SELECT pg_notify($1, $2)", [TERM_CHANNEL, marker]);
      await waitFor(() => notices.includes(marker), { timeoutMs: 5_000, what: `the notice "${marker}"` });
      return notices.filter((n) => !n.startsWith("marker "));
    };

    const agents = await start(["cp-node-1"]);
    const leader = await theOneLeader(agents);
    const epoch = (await leader.leader())!.current_epoch;
    const newTerm = JSON.stringify({ schema: "public", cluster_id: DEFAULT_CLUSTER_ID, epoch });
    const heartbeat = async () => (await primary.db.query<{ at: Date }>("SELECT heartbeat_at AS at FROM leadership_state WHERE cluster_id = $1", [DEFAULT_CLUSTER_ID])).rows[0]!.at.getTime();
    for (let beats = 0; beats < 2; beats++) {
      const before = await heartbeat();
      await waitFor(async () => (await heartbeat()) > before, { timeoutMs: 5_000, what: "a heartbeat" });
    }
    expect((await noticesSoFar()).map((n) => JSON.parse(n) as unknown)).toEqual([JSON.parse(newTerm)]);

    // A clean stop resigns: the holder is cleared, the epoch stays, no notice.
    await leader.process.stop();
    const row = await primary.db.query<{ holder_id: string | null }>("SELECT holder_id FROM leadership_state WHERE cluster_id = $1", [DEFAULT_CLUSTER_ID]);
    expect(row.rows).toEqual([{ holder_id: null }]);
    expect((await noticesSoFar()).map((n) => JSON.parse(n) as unknown)).toEqual([JSON.parse(newTerm)]);
  });
});

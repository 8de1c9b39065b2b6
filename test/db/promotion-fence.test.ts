import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { startPgCluster, type PgCluster } from "../../pgcluster/index.js";
import { LOCK_CLASS_ID, SchemaName } from "../../db/identifiers.js";
import { closeEpoch, openEpoch, readLeadership } from "../../db/leadership.js";
import { fenceSupersededServer, readServerStanding, stampPromotion } from "../../db/authority.js";
import { migrate } from "../../db/migrations.js";
import { AuthorityTracker } from "../../core/authority.js";

/**
 * The promotion fence in the database (migration 5), on a real primary and an
 * async standby that misses the primary's last terms: the first term on the
 * promoted server is stamped above the epochs it never received, a zombie
 * primary is fenced by evidence only, and stamp_promotion is seed 004 §3.
 */
describe("promotion fence", () => {
  let cluster: PgCluster;
  const schema = new SchemaName("public");
  const CLUSTER = "default";
  const clients: pg.Client[] = [];

  const connect = async (url: string, name = "promotion-fence-test") => {
    const c = new pg.Client({ connectionString: url, application_name: name });
    c.on("error", () => undefined); // the primary is killed under some of them
    await c.connect();
    clients.push(c);
    return c;
  };
  /** Opens and closes one term as `holder` on `url`; returns its epoch. */
  const term = async (url: string, holder: string, floor = 0, keepOpen = false) => {
    const c = await connect(url, holder);
    await c.query("SELECT pg_advisory_lock($1, hashtext($2))", [LOCK_CLASS_ID, CLUSTER]);
    const { epoch } = await openEpoch(c, schema, CLUSTER, holder, floor);
    if (!keepOpen) {
      await closeEpoch(c, schema, CLUSTER, holder, epoch, "resigned");
      await c.end();
    }
    return { epoch, session: c };
  };
  const sqlError = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e as { code: string; message: string });

  beforeAll(async () => {
    cluster = await startPgCluster({ standbys: 1 });
    await migrate(await connect(cluster.primary.url()), schema);
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    await cluster?.close();
  });

  it("terms lost with an async standby are never reused, the promotion is stamped, and the zombie is fenced", async () => {
    const primaryUrl = cluster.primary.url();
    const standbyUrl = cluster.standby.url();
    // Terms 1-2 replicate; then the standby goes away and terms 3-5 exist only on the primary.
    await term(primaryUrl, "cp-node-1");
    await term(primaryUrl, "cp-node-2");
    await cluster.standby.waitForReplayOf(cluster.primary);
    await cluster.standby.stop("fast");
    let lastOnPrimary = 0;
    for (let i = 0; i < 3; i++) lastOnPrimary = (await term(primaryUrl, "cp-node-1")).epoch;
    const zombieLeader = await term(primaryUrl, "cp-node-1", 0, true);
    expect(zombieLeader.epoch).toBe(lastOnPrimary + 1);

    // The primary crashes; the standby comes up alone and is promoted; then the
    // old primary starts again, writable on its old timeline: a zombie whose
    // leadership_state still names cp-node-1 with its epoch.
    await cluster.primary.kill("SIGKILL");
    await cluster.standby.start();
    await cluster.standby.promote();
    await cluster.primary.start();
    const promotedDb = await connect(standbyUrl);
    const zombieDb = await connect(primaryUrl);
    const promoted = await readServerStanding(promotedDb, schema, CLUSTER);
    const zombie = await readServerStanding(zombieDb, schema, CLUSTER);
    expect(promoted.systemIdentifier).toBe(zombie.systemIdentifier);
    expect(promoted.timeline).toBe(zombie.timeline + 1);
    expect(promoted.confirmedEpoch).toBe(2); // the rows of terms 3+ never arrived

    // Evidence decides, not reachability: the promoted server supersedes the zombie.
    const tracker = new AuthorityTracker();
    tracker.observe(zombie);
    tracker.observe(promoted);
    expect(tracker.supersededBy(zombie)).toMatchObject({ timeline: promoted.timeline });
    expect(tracker.supersededBy(promoted)).toBeUndefined();

    // The opener passes the highest epoch it saw anywhere (the zombie's): the
    // first term on the new timeline is above it, and stamps the promotion.
    const first = await term(standbyUrl, "cp-node-2", zombie.confirmedEpoch, true);
    expect(first.epoch).toBe(zombieLeader.epoch + 1);
    const afterFirst = await readServerStanding(promotedDb, schema, CLUSTER);
    expect(afterFirst.stamp).toBe(first.epoch);
    expect(afterFirst.lastPromotion).toMatchObject({ timeline: promoted.timeline, stampedEpoch: first.epoch, automatic: true, actor: "cp-node-2" });
    await closeEpoch(first.session, schema, CLUSTER, "cp-node-2", first.epoch, "resigned");
    await first.session.query("SELECT pg_advisory_unlock_all()");

    // The zombie refuses a fence whose evidence is not ahead of it: nothing changes.
    const refused = await sqlError(fenceSupersededServer(zombieDb, schema, { systemIdentifier: zombie.systemIdentifier, timeline: zombie.timeline, stamp: 0 }, "forged", "attacker"));
    expect(refused?.code).toBe("AH006");
    expect((await readLeadership(zombieDb, schema, CLUSTER)).holderId).toBe("cp-node-1");
    expect((await zombieDb.query("SELECT public.assert_epoch($1) AS e", [zombieLeader.epoch])).rows[0].e).toBe(String(zombieLeader.epoch));

    // With the promoted server's standing it is fenced: its leader's term ends
    // and assert_epoch refuses every epoch, the one it held included.
    const by = await readServerStanding(promotedDb, schema, CLUSTER);
    expect(await fenceSupersededServer(zombieDb, schema, by, "promoted server on a higher timeline", "test")).toBe(true);
    expect(await fenceSupersededServer(zombieDb, schema, by, "again", "test")).toBe(false);
    for (const e of [zombieLeader.epoch, zombieLeader.epoch + 1, 0]) {
      const err = await sqlError(zombieDb.query("SELECT public.assert_epoch($1)", [e]));
      expect(err?.code).toBe("AH001");
      expect(err?.message).toMatch(/superseded by timeline/);
    }
    expect((await readLeadership(zombieDb, schema, CLUSTER)).holderId).toBeUndefined();
    expect((await readServerStanding(zombieDb, schema, CLUSTER)).fenced).toMatch(/superseded by timeline/);
    // No term opens there again, even for a session that holds the lock.
    const locker = await connect(primaryUrl, "cp-node-1");
    await locker.query("SELECT pg_advisory_lock($1, hashtext($2))", [LOCK_CLASS_ID, CLUSTER]);
    const reopen = await sqlError(openEpoch(locker, schema, CLUSTER, "cp-node-1", 0));
    expect(reopen?.code).toBe("AH004");
    // The promoted server itself is untouched by the fence.
    expect((await readServerStanding(promotedDb, schema, CLUSTER)).fenced).toBeUndefined();
  });

  it("stamp_promotion (seed 004 §3) raises the writer epoch on the promoted server only, and records region and actor", async () => {
    const promotedDb = await connect(cluster.standby.url());
    const zombieDb = await connect(cluster.primary.url());
    const before = await readServerStanding(promotedDb, schema, CLUSTER);
    const open = await term(cluster.standby.url(), "cp-node-3", 0, true);

    const tooHigh = await sqlError(stampPromotion(promotedDb, schema, CLUSTER, { region: "eu-west-1", actor: "alice", reason: "forged", atLeast: open.epoch + 5_000 }));
    expect(tooHigh?.code).toBe("AH003");
    expect((await readLeadership(promotedDb, schema, CLUSTER)).holderId).toBe("cp-node-3");

    const stamped = await stampPromotion(promotedDb, schema, CLUSTER, { region: "eu-west-1", actor: "alice", reason: "region failover", atLeast: 0 });
    expect(stamped.stampedEpoch).toBe(open.epoch + 1);
    expect(stamped.closed).toEqual([open.epoch]);
    expect(stamped.timeline).toBe(before.timeline);
    const after = await readServerStanding(promotedDb, schema, CLUSTER);
    expect(after.stamp).toBe(stamped.stampedEpoch);
    expect(after.lastPromotion).toMatchObject({ region: "eu-west-1", actor: "alice", reason: "region failover", automatic: false });
    // The old term is over: its epoch is refused, and the next term opens above the stamp.
    expect((await sqlError(promotedDb.query("SELECT public.assert_epoch($1)", [open.epoch])))?.code).toBe("AH001");
    await open.session.query("SELECT pg_advisory_unlock_all()");
    expect((await term(cluster.standby.url(), "cp-node-3")).epoch).toBe(stamped.stampedEpoch + 1);

    // The fenced zombie refuses a stamp.
    const onZombie = await sqlError(stampPromotion(zombieDb, schema, CLUSTER, { region: "us-east-1", actor: "bob", reason: "wrong server", atLeast: 0 }));
    expect(onZombie?.code).toBe("AH004");
  });
});

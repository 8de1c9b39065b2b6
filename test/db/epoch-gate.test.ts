import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { startPgCluster, type PgCluster } from "../../pgcluster/index.js";
import { LOCK_CLASS_ID, SchemaName } from "../../db/identifiers.js";
import { closeEpoch, openEpoch, readEpochs, readLeadership, readLockHolders } from "../../db/leadership.js";
import { migrate } from "../../db/migrations.js";
import { waitFor } from "../../core/clock.js";

/**
 * The epoch gate: fenced writes share it, a change of epoch takes it alone.
 * A stream of back-to-back fenced transactions must not starve the change, and
 * no write fenced with the old epoch may commit once the change has begun.
 */
describe("the epoch gate under a flood of fenced writes", () => {
  let cluster: PgCluster;
  const schema = new SchemaName("gate");
  const clusterId = "flooded";

  const connect = async (applicationName = "gate-test") => {
    const c = new pg.Client({ connectionString: cluster.primary.url(), application_name: applicationName });
    c.on("error", () => undefined);
    await c.connect();
    return c;
  };

  beforeAll(async () => {
    cluster = await startPgCluster({ standbys: 0 });
    const c = await connect();
    try {
      await migrate(c, schema);
      await c.query(`CREATE TABLE gate.fenced_writes (epoch bigint NOT NULL, writer int NOT NULL)`);
    } finally {
      await c.end();
    }
  });
  afterAll(async () => {
    await cluster?.close();
  });

  it("close_epoch and open_epoch complete while writers keep fencing, and no old-epoch write commits after the change began", async () => {
    const leader = await connect("cp-node-1");
    await leader.query("SELECT pg_advisory_lock($1, hashtext($2))", [LOCK_CLASS_ID, clusterId]);
    const first = await openEpoch(leader, schema, clusterId, "cp-node-1", 0);

    const WRITERS = 12;
    const MAX_TRANSACTIONS = 20_000; // per writer: the flood ends by itself
    let stop = false;
    const state = { running: WRITERS, committed: new Map<number, number>() };
    const writer = async (id: number) => {
      const c = await connect(`writer-${id}`);
      let epoch = first.epoch;
      try {
        for (let i = 0; i < MAX_TRANSACTIONS && !stop; i++) {
          try {
            await c.query("BEGIN");
            await c.query("SELECT gate.assert_epoch($1, $2)", [epoch, clusterId]);
            await c.query("INSERT INTO gate.fenced_writes (epoch, writer) VALUES ($1, $2)", [epoch, id]);
            // Some work inside the transaction, so fenced transactions overlap all the time.
            await c.query("SELECT count(*) FROM generate_series(1, 20000)");
            await c.query("COMMIT");
            state.committed.set(epoch, (state.committed.get(epoch) ?? 0) + 1);
          } catch (err) {
            await c.query("ROLLBACK");
            if ((err as { code?: string }).code !== "AH001") throw err;
            // Stale: re-read the leader's epoch and go on, as an application would.
            epoch = (await readLeadership(c, schema, clusterId)).epoch;
          }
        }
      } finally {
        state.running--;
        await c.end();
      }
    };
    const flood = Promise.all(Array.from({ length: WRITERS }, (_, i) => writer(i)));

    // Let the flood get going: the old epoch has fenced writes from every writer.
    await until(() => (state.committed.get(first.epoch) ?? 0) >= WRITERS * 10, 30_000, "fenced writes under the first epoch");

    const change = (async () => {
      await leader.query("BEGIN");
      await closeEpoch(leader, schema, clusterId, "cp-node-1", first.epoch, "resigned");
      const [atClose] = (await leader.query<{ n: string }>("SELECT count(*) AS n FROM gate.fenced_writes WHERE epoch = $1", [first.epoch])).rows;
      await leader.query("COMMIT");
      await leader.query("BEGIN");
      const next = await openEpoch(leader, schema, clusterId, "cp-node-1", 0);
      const [atOpen] = (await leader.query<{ n: string }>("SELECT count(*) AS n FROM gate.fenced_writes WHERE epoch = $1", [first.epoch])).rows;
      await leader.query("COMMIT");
      return { next, atClose: Number(atClose!.n), atOpen: Number(atOpen!.n) };
    })();
    const outcome = await Promise.race([change, deadline(30_000)]);
    const floodStillRunning = state.running === WRITERS;
    expect(outcome, "the epoch change finished within the deadline").not.toBe("deadline");
    expect(floodStillRunning, "the epoch change finished while every writer was still fencing").toBe(true);
    const { next, atClose, atOpen } = outcome as Exclude<typeof outcome, "deadline">;
    expect(next.epoch).toBe(first.epoch + 1);

    // The writers carry on under the new epoch, then stop.
    await until(() => (state.committed.get(next.epoch) ?? 0) >= WRITERS * 5, 30_000, "fenced writes under the new epoch");
    stop = true;
    await flood;

    // Every write fenced with the old epoch had committed when close_epoch returned.
    const [final] = await cluster.primary.query<{ n: string }>("SELECT count(*) AS n FROM gate.fenced_writes WHERE epoch = $1", [first.epoch]);
    expect(Number(final!.n)).toBe(atClose);
    expect(atOpen).toBe(atClose);
    expect(Number(final!.n)).toBe(state.committed.get(first.epoch));
    const epochs = await readEpochs(leader, schema, clusterId);
    expect(epochs.map((e) => [e.epoch, e.endReason ?? null])).toEqual([
      [next.epoch, null],
      [first.epoch, "resigned"],
    ]);
    await leader.end();
  });

  it("the gate is not the leader lock: a fenced transaction holding the gate is never taken for a leader", async () => {
    const app = await connect("application");
    const leader = await connect("cp-node-2");
    try {
      await leader.query("SELECT pg_advisory_lock($1, hashtext($2))", [LOCK_CLASS_ID, "gate-only"]);
      const { epoch } = await openEpoch(leader, schema, "gate-only", "cp-node-2", 0);
      await app.query("BEGIN");
      await app.query("SELECT gate.assert_epoch($1, $2)", [epoch, "gate-only"]);
      expect((await readLockHolders(leader, "gate-only")).map((h) => h.applicationName)).toEqual(["cp-node-2"]);
      await leader.query("SELECT pg_advisory_unlock_all()");
      // The application still holds the gate (shared) inside its transaction.
      expect(await readLockHolders(leader, "gate-only")).toEqual([]);
      await app.query("COMMIT");
    } finally {
      await app.end();
      await leader.end();
    }
  });
});

function deadline(ms: number): Promise<"deadline"> {
  return new Promise((resolve) => setTimeout(() => resolve("deadline"), ms).unref());
}

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  await waitFor(check, { timeoutMs, intervalMs: 5, what });
}

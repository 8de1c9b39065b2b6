import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { waitFor } from "../../core/clock.js";
import { writeReconcileHold } from "../../db/coordinator-state.js";
import { DEFAULT_CLUSTER_ID, SchemaName } from "../../db/identifiers.js";
import { readLockWaiters } from "../../db/lock-oversight.js";
import { agentsOnOnePrimary, theOneLeader, writeReadyAgents } from "../support/agents.js";
import { freePortBlock } from "../support/dev-cluster.js";
import { spawnAutonomy, waitHealthy, type AutonomyProcess } from "../support/processes.js";

/**
 * With no coordinator connected, every follower queues on the leader lock
 * (pg_advisory_lock) as the floor's agents do, so a crashed leader's lock
 * goes to the first in the queue the instant its session ends. The queue is
 * left when it must be: a manual-reconcile hold recorded in the database, or
 * a coordinator that connects (it chooses the successor, by priority and lag).
 */
describe("followers queued on the lock", () => {
  const primary = agentsOnOnePrimary();
  let coordinator: AutonomyProcess | undefined;
  let auditDir: string | undefined;
  const schema = new SchemaName("public");

  afterEach(async () => {
    await coordinator?.stop();
    coordinator = undefined;
    if (auditDir) await rm(auditDir, { recursive: true, force: true });
  });

  const waiters = async () => (await readLockWaiters(primary.db, DEFAULT_CLUSTER_ID)).sort();
  const start = (n: number, coordinatorUrl?: string) =>
    primary.start(Array.from({ length: n }, (_, i) => `cp-node-${i + 1}`), coordinatorUrl ? { coordinatorUrl } : {});

  it("alone, both followers queue; a SIGKILLed leader's lock goes to one of them, and the warm-up leaves no trace", async () => {
    const agents = await start(3);
    const leader = await theOneLeader(agents);
    const followers = agents.filter((a) => a !== leader).map((a) => a.nodeId).sort();
    await waitFor(async () => JSON.stringify(await waiters()) === JSON.stringify(followers), { timeoutMs: 10_000, what: `${followers.join(" and ")} queued on the lock` });

    await leader.process.kill();
    const survivors = agents.filter((a) => a !== leader);
    const next = await theOneLeader(survivors);
    expect(followers).toContain(next.nodeId);
    const rows = await primary.db.query<{ epoch: string; holder_id: string }>("SELECT epoch, holder_id FROM leader_epochs ORDER BY epoch");
    expect(rows.rows.map((r) => [Number(r.epoch), r.holder_id])).toEqual([
      [1, leader.nodeId],
      [2, next.nodeId],
    ]);
    // Each lock session ran open_epoch once for a cluster id no cluster can have, and rolled it back.
    const others = await primary.db.query("SELECT cluster_id FROM leadership_state WHERE cluster_id <> $1 UNION ALL SELECT cluster_id FROM leader_epochs WHERE cluster_id <> $1", [DEFAULT_CLUSTER_ID]);
    expect(others.rows).toEqual([]);
  });

  it("a hold recorded in the database takes the followers out of the queue, and nobody takes the freed lock", async () => {
    const agents = await start(3);
    const leader = await theOneLeader(agents);
    await waitFor(async () => (await waiters()).length === 2, { timeoutMs: 10_000, what: "two followers queued on the lock" });

    await writeReconcileHold(primary.db, schema, DEFAULT_CLUSTER_ID, true, "test", "split-brain under review");
    // Sooner than a wait's 5 s slice: the hold's sighting interrupts the wait.
    await waitFor(async () => (await waiters()).length === 0, { timeoutMs: 3_000, what: "the followers to leave the queue" });
    await leader.process.kill();
    const survivors = agents.filter((a) => a !== leader);
    // The lock is free and stays free: no new term while the hold is recorded.
    const until = Date.now() + 3_000;
    while (Date.now() < until) {
      expect(await writeReadyAgents(survivors)).toEqual([]);
      const open = await primary.db.query("SELECT epoch FROM leader_epochs WHERE epoch > 1");
      expect(open.rows).toEqual([]);
      await new Promise((r) => setTimeout(r, 200));
    }

    await writeReconcileHold(primary.db, schema, DEFAULT_CLUSTER_ID, false, "test", "reviewed");
    const next = await theOneLeader(survivors);
    expect(survivors).toContain(next);
  });

  it("a coordinator that connects takes the queue over: only the successor it designates stays queued", async () => {
    const port = await freePortBlock(1);
    const url = `http://127.0.0.1:${port}`;
    const agents = await start(3, url);
    const leader = await theOneLeader(agents);
    await waitFor(async () => (await waiters()).length === 2, { timeoutMs: 15_000, what: "two followers queued while no coordinator answers" });

    auditDir = await mkdtemp(path.join(os.tmpdir(), "autonomy-lock-queue-audit-"));
    coordinator = spawnAutonomy("coordinator", ["coordinator", "--database-url", primary.cluster.primary.url(), "--listen", `127.0.0.1:${port}`, "--audit-dir", auditDir]);
    await waitHealthy(coordinator, url);
    const queued = await waitFor(
      async () => {
        const w = await waiters();
        return w.length === 1 ? w[0] : undefined;
      },
      { timeoutMs: 20_000, what: "exactly one follower queued (the designated successor)" },
    );
    expect(queued).not.toBe(leader.nodeId);

    await leader.process.kill();
    const next = await theOneLeader(agents.filter((a) => a !== leader));
    expect(next.nodeId).toBe(queued);
  });
});

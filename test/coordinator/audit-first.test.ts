import { rm, writeFile } from "node:fs/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../core/clock.js";
import { startPgCluster, type PgCluster } from "../../pgcluster/index.js";
import { Harness } from "./support/harness.js";

const who = { operator: "alice", reason: "planned maintenance" };

async function rejection(p: Promise<unknown>): Promise<ConnectError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  if (!(err instanceof ConnectError)) throw new Error(`expected a gRPC error, got ${String(err)}`);
  return err;
}

describe("a mutating call that cannot be audited is refused before it acts", () => {
  let cluster: PgCluster;
  let h: Harness | undefined;

  beforeAll(async () => {
    cluster = await startPgCluster({ standbys: 0 });
  });
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });
  afterAll(async () => {
    await cluster?.close();
  });

  /** leadership_state (less its heartbeat, which moves on its own) and leader_epochs as the database has them. */
  async function leadershipRows(harness: Harness): Promise<unknown[]> {
    const db = new pg.Client({ connectionString: cluster.primary.url() });
    await db.connect();
    try {
      const state = await db.query(`SELECT cluster_id, holder_id, epoch, acquired_at FROM "${harness.schema}".leadership_state ORDER BY cluster_id`);
      const epochs = await db.query(`SELECT * FROM "${harness.schema}".leader_epochs ORDER BY epoch`);
      return [state.rows, epochs.rows];
    } finally {
      await db.end();
    }
  }

  it("audit dir replaced by a file: failover and maintenance are refused, leadership and maintenance unchanged", async () => {
    h = await new Harness(cluster.primary.url()).start();
    const harness = h;
    const leader = await harness.agent("cp-node-1");
    await waitFor(() => leader.isLeader, { timeoutMs: 10_000, what: "cp-node-1 to be ordered to lead" });
    const follower = await harness.agent("cp-node-2", { priority: 5 });
    const admin = harness.admin();
    await waitFor(async () => {
      const s = await admin.getStatus({});
      return s.nodes.length === 2 && s.leader?.writeReady === true;
    }, { timeoutMs: 10_000, what: "both nodes reported and the leader is Write-Ready" });
    const before = await leadershipRows(harness);
    const statusBefore = await admin.getStatus({});

    await rm(harness.auditDir, { recursive: true, force: true });
    await writeFile(harness.auditDir, "not a directory\n");

    const failover = await rejection(admin.triggerFailover({ ...who, expectedLeader: "cp-node-1" }));
    expect(failover.code).toBe(Code.FailedPrecondition);
    expect(failover.rawMessage).toBe(`precondition not met: audit log unusable: ${harness.auditDir} is not a directory; fix --audit-dir`);
    // A retry is refused the same way: nothing happens twice, nothing happens at all.
    expect((await rejection(admin.triggerFailover({ ...who }))).code).toBe(Code.FailedPrecondition);

    const maintenance = await rejection(admin.setMaintenance({ ...who, paused: true }));
    expect(maintenance.code).toBe(Code.FailedPrecondition);
    expect(maintenance.rawMessage).toContain("is not a directory");

    expect(await leadershipRows(harness)).toEqual(before);
    expect(leader.isLeader).toBe(true);
    expect(follower.isLeader).toBe(false);
    expect(follower.commands.filter((c) => c.action.kind === "campaign")).toEqual([]);
    expect(leader.commands.filter((c) => c.action.kind === "resign")).toEqual([]);
    const statusAfter = await admin.getStatus({});
    expect(statusAfter.maintenance).toBe(false);
    expect(statusAfter.leader?.holderId).toBe(statusBefore.leader?.holderId);
    expect(statusAfter.leader?.epoch).toBe(statusBefore.leader?.epoch);

    // Fixed, the same call goes through and is audited.
    await rm(harness.auditDir, { force: true });
    const r = await admin.setMaintenance({ ...who, paused: true });
    expect(r.paused).toBe(true);
    expect(r.message).not.toContain("WARNING");
    expect((await harness.audit("ha.maintenance.paused")).map((e) => e.operator)).toEqual(["alice"]);
  });
});

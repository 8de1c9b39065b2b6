import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../core/clock.js";
import { CALLER_HEADER } from "../../core/metadata.js";
import { startCoordinator } from "../../coordinator/start-coordinator.js";
import { HaAdminService } from "../../gen/autonomy/ha/v1/admin_pb.js";
import { startPgCluster, type PgCluster } from "../../pgcluster/index.js";
import { clientFor } from "../../rpc/client.js";
import { Harness, TEST_POLICY } from "./support/harness.js";
import { ScriptedAgent } from "./support/scripted-agent.js";

const who = { operator: "alice", reason: "planned maintenance" };

/** What the lock database holds for one cluster: what a rejected report must leave alone. */
async function databaseState(url: string, schema: string, clusterId: string) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const q = async (sql: string) => (await c.query(sql, [clusterId])).rows;
    return {
      state: await q(`SELECT holder_id, epoch, acquired_at FROM "${schema}".leadership_state WHERE cluster_id = $1`),
      epochs: await q(`SELECT epoch, holder_id, resigned_at, end_reason FROM "${schema}".leader_epochs WHERE cluster_id = $1 ORDER BY epoch`),
      floor: await q(`SELECT system_identifier, floor FROM "${schema}".epoch_floor WHERE cluster_id = $1`),
    };
  } finally {
    await c.end();
  }
}

describe("the epoch floor comes only from the lock database", () => {
  let pgA: PgCluster;
  let h: Harness | undefined;
  const cleanups: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    pgA = await startPgCluster({ standbys: 0 });
  });
  afterEach(async () => {
    await h?.close();
    h = undefined;
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  });
  afterAll(async () => {
    await pgA?.close();
  });

  async function ledCluster() {
    h = await new Harness(pgA.primary.url()).start();
    const leader = await h.agent("cp-node-1");
    await waitFor(() => leader.isLeader, { timeoutMs: 10_000, what: "cp-node-1 to be ordered to lead" });
    const successor = await h.agent("cp-node-2", { priority: 5 });
    const admin = h.admin();
    await waitFor(async () => (await admin.getStatus({})).nodes.length === 2 && (await admin.getStatus({})).leader?.writeReady, {
      timeoutMs: 10_000,
      what: "both nodes reported and the leader is Write-Ready",
    });
    await waitFor(async () => (await databaseState(pgA.primary.url(), h!.schema, h!.clusterId)).floor[0]?.floor === String(leader.epoch), {
      timeoutMs: 5_000,
      what: "the coordinator to keep the leader's epoch as the floor",
    });
    return { h, leader, successor, admin };
  }

  /** A node that reports `forged` as its highest epoch seen; resolves once the coordinator applied or refused the report. */
  async function forge(harness: Harness, nodeId: string, forged: number) {
    const admin = harness.admin();
    // nofailover: the forger is never the successor, so the failovers below show what the floor does.
    const forger = await harness.agent(nodeId, { nofailover: true });
    await waitFor(async () => (await admin.getStatus({})).nodes.find((n) => n.nodeId === nodeId)?.connected, { timeoutMs: 5_000, what: `${nodeId} known` });
    forger.overrides = { highestEpochSeen: forged, priority: 4242 };
    await forger.report();
    await waitFor(
      async () => {
        const n = (await admin.getStatus({})).nodes.find((x) => x.nodeId === nodeId);
        return n?.priority === 4242 || n?.connected === false;
      },
      { timeoutMs: 5_000, what: `the coordinator to take up ${nodeId}'s forged report` },
    );
    return forger;
  }

  for (const forged of [2 ** 53 - 1, 100]) {
    it(`a report with highest_epoch_seen ${forged} changes nothing in the database, and the planned failover after it opens exactly previous + 1`, async () => {
      const { h, leader, successor, admin } = await ledCluster();
      const epoch = leader.epoch;
      const before = await databaseState(pgA.primary.url(), h.schema, h.clusterId);
      await forge(h, "cp-node-6", forged);
      // A few database reads later, still nothing changed.
      await waitFor(async () => (await h.json<{ current_epoch: number }>("/v1/health/leader")).body.current_epoch === epoch, { timeoutMs: 5_000, what: "a leader read" });
      expect(await databaseState(pgA.primary.url(), h.schema, h.clusterId)).toEqual(before);

      const r = await admin.triggerFailover({ ...who, expectedLeader: "cp-node-1" });
      expect(r).toMatchObject({ success: true, newHolder: "cp-node-2", newEpoch: BigInt(epoch + 1) });
      expect(successor.commands.find((c) => c.action.kind === "campaign")?.action).toMatchObject({ kind: "campaign", epochFloor: epoch });
      expect(successor.epoch).toBe(epoch + 1);
    });
  }

  it("after a forged report, an automatic failover (leader crash) opens exactly previous + 1", async () => {
    const { h, leader, successor } = await ledCluster();
    const epoch = leader.epoch;
    await forge(h, "cp-node-6", 2 ** 53 - 1);
    await leader.crash();
    await waitFor(() => successor.isLeader, { timeoutMs: 10_000, what: "cp-node-2 to be ordered to campaign" });
    expect(successor.epoch).toBe(epoch + 1);
    const state = await databaseState(pgA.primary.url(), h.schema, h.clusterId);
    expect(state.state).toMatchObject([{ holder_id: "cp-node-2", epoch: String(epoch + 1) }]);
    await waitFor(async () => (await databaseState(pgA.primary.url(), h.schema, h.clusterId)).floor[0]?.floor === String(epoch + 1), {
      timeoutMs: 5_000,
      what: "the floor to follow the new term",
    });
  });

  /** A coordinator with a given cluster id, schema and audit dir, and a first agent it orders to lead. */
  async function coordinatorOn(databaseUrl: string, clusterId: string, schema: string, auditDir: string) {
    const coordinator = await startCoordinator({ databaseUrl, port: 0, auditDir, schema, policy: { ...TEST_POLICY, clusterId } });
    const agent = await new ScriptedAgent({ nodeId: "cp-node-1", coordinatorUrl: coordinator.url, databaseUrl, clusterId, schema }).start();
    return { coordinator, agent, stop: async () => (await agent.stop(), await coordinator.stop()) };
  }

  it("a coordinator restarted on a freshly initialised database, from the same audit dir, opens epoch 1", async () => {
    const auditDir = await mkdtemp(path.join(os.tmpdir(), "autonomy-floor-audit-"));
    cleanups.push(() => rm(auditDir, { recursive: true, force: true }));
    const first = await coordinatorOn(pgA.primary.url(), "reborn", "reborn", auditDir);
    cleanups.push(first.stop);
    // A long history on the first database: its terms are in the audit log.
    // nofailover, and cp-node-1 resigns holding: the coordinator has nobody to order to campaign, so the lock stays free for cp-node-9's own campaign.
    const old = new ScriptedAgent({
      nodeId: "cp-node-9",
      coordinatorUrl: first.coordinator.url,
      databaseUrl: pgA.primary.url(),
      clusterId: "reborn",
      schema: "reborn",
      nofailover: true,
    });
    await waitFor(() => first.agent.isLeader, { timeoutMs: 10_000, what: "cp-node-1 to lead on the first database" });
    await old.start();
    cleanups.push(() => old.stop());
    await first.agent.resign(true);
    expect(await old.campaign(800)).toBe(true);
    expect(old.epoch).toBe(801);
    await waitFor(async () => (await databaseState(pgA.primary.url(), "reborn", "reborn")).floor[0]?.floor === "801", { timeoutMs: 5_000, what: "floor 801 kept" });
    await old.stop();
    await first.stop();

    const pgB = await startPgCluster({ standbys: 0 });
    cleanups.push(() => pgB.close());
    const second = await coordinatorOn(pgB.primary.url(), "reborn", "reborn", auditDir);
    cleanups.push(second.stop);
    await waitFor(() => second.agent.isLeader, { timeoutMs: 10_000, what: "cp-node-1 to lead on the fresh database" });
    expect(second.agent.epoch).toBe(1);
    expect(second.agent.commands.find((c) => c.action.kind === "campaign")?.action).toMatchObject({ epochFloor: 0 });
  });

  it("the floor survives a coordinator restart on the same database, even when the epoch rows are gone", async () => {
    const auditDir = await mkdtemp(path.join(os.tmpdir(), "autonomy-floor-audit-"));
    cleanups.push(() => rm(auditDir, { recursive: true, force: true }));
    const url = pgA.primary.url();
    const first = await coordinatorOn(url, "kept", "kept", auditDir);
    cleanups.push(first.stop);
    await waitFor(() => first.agent.isLeader, { timeoutMs: 10_000, what: "cp-node-1 to lead" });
    // Resigned holding: the coordinator does not order it back to campaign before its own campaign above 40.
    await first.agent.resign(true);
    expect(await first.agent.campaign(40)).toBe(true);
    await waitFor(async () => (await databaseState(url, "kept", "kept")).floor[0]?.floor === "41", { timeoutMs: 5_000, what: "floor 41 kept" });
    await first.stop();

    // History pruned (or lost): only the floor remembers epoch 41.
    await pgA.primary.query("DELETE FROM kept.leader_epochs; DELETE FROM kept.leadership_state");
    const second = await coordinatorOn(url, "kept", "kept", auditDir);
    cleanups.push(second.stop);
    await waitFor(() => second.agent.isLeader, { timeoutMs: 10_000, what: "cp-node-1 to lead after the restart" });
    expect(second.agent.commands.find((c) => c.action.kind === "campaign")?.action).toMatchObject({ epochFloor: 41 });
    expect(second.agent.epoch).toBe(42);
    const admin = clientFor(HaAdminService, second.coordinator.url, { metadata: { [CALLER_HEADER]: "test-operator" } });
    await waitFor(async () => Number((await admin.getStatus({})).leader?.epoch) === 42, { timeoutMs: 5_000, what: "the coordinator to see epoch 42" });
  });
});


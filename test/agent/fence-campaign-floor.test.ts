import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPgCluster, type PgCluster } from "../../pgcluster/index.js";
import { waitFor } from "../../core/clock.js";
import type { CommandOutcome } from "../../core/model.js";
import { MAX_EPOCH_JUMP } from "../../db/leadership.js";
import { AgentProcess } from "../support/agents.js";
import { ScriptedCoordinator } from "../support/scripted-coordinator.js";

/** A hostile coordinator's Campaign with a raw uint64 floor, for the given command epoch; resolves with the ack. */
function campaign(coordinator: ScriptedCoordinator, commandId: string, epoch: bigint, epochFloor: bigint): Promise<CommandOutcome> {
  coordinator.send({ message: { case: "command", value: { commandId, epoch, reason: "forged", action: { case: "campaign", value: { epochFloor, waitMs: 0 } } } } });
  return coordinator.ack(commandId);
}

describe("an agent refuses a Campaign whose epoch_floor is out of bounds", () => {
  let cluster: PgCluster;
  let coordinator: ScriptedCoordinator;
  let agent: AgentProcess;

  beforeAll(async () => {
    cluster = await startPgCluster({ standbys: 0 });
    coordinator = new ScriptedCoordinator();
    await coordinator.start();
    agent = await AgentProcess.start({ nodeId: "cp-node-1", databaseUrl: cluster.primary.url(), coordinatorUrl: coordinator.server.url });
  });
  afterAll(async () => {
    await agent?.process.stop();
    await coordinator?.server.close();
    await cluster?.close();
  });

  const lockSessions = async () =>
    (await cluster.primary.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE application_name = 'cp-node-1' AND backend_type = 'client backend' ORDER BY pid")).map(
      (r) => r.pid,
    );
  const database = async () => ({
    state: await cluster.primary.query("SELECT holder_id, epoch, acquired_at FROM leadership_state"),
    epochs: await cluster.primary.query("SELECT epoch, holder_id, resigned_at FROM leader_epochs ORDER BY epoch"),
  });

  it("campaign{epoch_floor: 2^64-1} and a floor past the bound are refused with a clear ack; the agent keeps its term and its session", async () => {
    const leading = await waitFor(() => coordinator.reports.find((r) => r.role === "leader" && r.writeReady), { timeoutMs: 15_000, what: "a leader report" });
    expect(leading.epoch).toBe(1);
    const sessions = await lockSessions();
    const before = await database();

    const huge = await campaign(coordinator, "c-huge", 1n, 2n ** 64n - 1n);
    expect(huge.result).toBe("refused");
    expect(huge.message).toMatch(/^campaign refused: epoch_floor \d+ is not an epoch: it must be a whole number from 0 to 9223372036854775807 \(bigint\)$/);
    const far = await campaign(coordinator, "c-far", 1n, BigInt(1 + MAX_EPOCH_JUMP + 1));
    expect(far).toMatchObject({
      result: "refused",
      message: `campaign refused: epoch_floor ${2 + MAX_EPOCH_JUMP} is more than ${MAX_EPOCH_JUMP} above epoch 1, the highest epoch confirmed in the lock database`,
    });

    // Still the leader of epoch 1 on the same lock session, reporting as before: no churn, nothing raised.
    const seen = coordinator.reports.length;
    await waitFor(() => coordinator.reports.length > seen + 3, { timeoutMs: 10_000, what: "more reports" });
    expect(coordinator.latest()).toMatchObject({ role: "leader", epoch: 1, writeReady: true, highestEpochSeen: 1, lockBackendPid: leading.lockBackendPid });
    expect(await lockSessions()).toEqual(sessions);
    expect(await database()).toEqual(before);
  });

  it("a follower refuses the forged floor, stays out, and then takes an honest campaign at the next epoch", async () => {
    coordinator.send({ message: { case: "command", value: { commandId: "c-resign", epoch: 1n, reason: "test", action: { case: "resign", value: { hold: true } } } } });
    await waitFor(() => coordinator.acks.find((a) => a.commandId === "c-resign" && a.result === "done"), { timeoutMs: 10_000, what: "the resign" });
    await waitFor(() => coordinator.latest()?.role === "held", { timeoutMs: 5_000, what: "a held report" });

    const huge = await campaign(coordinator, "c-huge-2", 1n, 2n ** 64n - 1n);
    expect(huge.result).toBe("refused");
    // Refused changes nothing: still held, no lock taken, no epoch opened.
    await waitFor(() => coordinator.latest()?.role === "held", { timeoutMs: 5_000, what: "still held" });
    expect(await cluster.primary.query("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted")).toHaveLength(0);
    expect(await cluster.primary.query("SELECT epoch FROM leader_epochs ORDER BY epoch")).toEqual([{ epoch: "1" }]);

    const honest = await campaign(coordinator, "c-honest", 1n, 1n);
    expect(honest).toMatchObject({ result: "done", epoch: 2 });
    await waitFor(() => coordinator.latest()?.role === "leader" && coordinator.latest()?.epoch === 2, { timeoutMs: 5_000, what: "leader of epoch 2" });
  });
});

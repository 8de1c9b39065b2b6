import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../core/clock.js";
import type { CommandOutcome } from "../../core/model.js";
import { acquireCoordinatorLockSql, openCoordinatorTerm } from "../../db/coordinator-term.js";
import { SchemaName } from "../../db/identifiers.js";
import { startPgCluster, type PgCluster } from "../../pgcluster/index.js";
import { AgentProcess } from "../support/agents.js";
import { ScriptedCoordinator } from "../support/scripted-coordinator.js";

const schema = new SchemaName("public");

/**
 * An agent obeys a command only when the lock database says its sender is
 * the active coordinator: the command's coordinator term must be the term
 * recorded in coordinator_term, and that term's session must still hold the
 * coordinator lock. Each attack below is refused, and the term, the lock
 * and the epochs stay as they were.
 */
describe("agents refuse orders from anyone but the active coordinator", () => {
  let cluster: PgCluster;
  let coordinator: ScriptedCoordinator;
  let agent: AgentProcess;
  let holder: pg.Client | undefined;

  const resign = (commandId: string, coordinatorTerm: bigint): Promise<CommandOutcome> => {
    coordinator.send({ message: { case: "command", value: { commandId, epoch: 1n, coordinatorTerm, reason: "test", action: { case: "resign", value: { hold: false } } } } });
    return coordinator.ack(commandId);
  };
  const state = async () => ({
    epochs: await cluster.primary.query("SELECT epoch, holder_id, resigned_at FROM leader_epochs ORDER BY epoch"),
    term: await cluster.primary.query("SELECT term, coordinator_id, backend_pid FROM coordinator_term"),
  });
  /** A coordinator's lock session: takes the coordinator lock and opens the next term. */
  async function becomeActive(id: string): Promise<{ client: pg.Client; term: number }> {
    const client = new pg.Client({ connectionString: cluster.primary.url() });
    await client.connect();
    await client.query(acquireCoordinatorLockSql, [schema.name]);
    return { client, term: await openCoordinatorTerm(client, schema, id, `http://${id}:8890`, "", 0) };
  }

  beforeAll(async () => {
    cluster = await startPgCluster({ standbys: 0 });
    coordinator = new ScriptedCoordinator();
    await coordinator.start();
    agent = await AgentProcess.start({ nodeId: "cp-node-1", databaseUrl: cluster.primary.url(), coordinatorUrl: coordinator.url });
    await waitFor(() => coordinator.reports.find((r) => r.role === "leader" && r.writeReady && r.epoch === 1), { timeoutMs: 20_000, what: "cp-node-1 leading epoch 1" });
  });
  afterAll(async () => {
    await holder?.end().catch(() => undefined);
    await agent?.process.stop();
    await coordinator?.server.close();
    await cluster?.close();
  });

  it("a session without the coordinator lock cannot open a term (AH007), and nothing is recorded", async () => {
    const c = new pg.Client({ connectionString: cluster.primary.url() });
    await c.connect();
    try {
      await expect(openCoordinatorTerm(c, schema, "intruder", "http://intruder:1", "", 0)).rejects.toMatchObject({ code: "AH007" });
      await expect(openCoordinatorTerm(c, schema, "intruder", "http://intruder:1", "", 10)).rejects.toMatchObject({ code: "AH007" });
    } finally {
      await c.end();
    }
    expect(await cluster.primary.query("SELECT * FROM coordinator_term")).toEqual([]);
  });

  it("a forged term, a deposed term, and term 0 once a coordinator has been elected are refused; the active term is obeyed", async () => {
    const first = await becomeActive("coord-a");
    holder = first.client;
    const before = await state();

    // A term no coordinator opened.
    const forged = await resign("forged", BigInt(first.term + 5));
    expect(forged.result).toBe("refused");
    expect(forged.message).toContain(`the active coordinator is coord-a (http://coord-a:8890) in term ${first.term}`);
    // A hold would make the leader resign: from an unconfirmed term it is refused too.
    coordinator.send({ message: { case: "command", value: { commandId: "forged-hold", epoch: 1n, coordinatorTerm: BigInt(first.term + 5), reason: "test", action: { case: "hold", value: {} } } } });
    expect((await coordinator.ack("forged-hold")).result).toBe("refused");
    // Term 0 (a coordinator outside any election) once one has been elected here.
    const unelected = await resign("unelected", 0n);
    expect(unelected.result).toBe("refused");
    expect(await state()).toEqual(before);

    // coord-a's session ends (killed); coord-b takes over: coord-a's term is deposed.
    await first.client.end();
    holder = undefined;
    const gone = await resign("gone", BigInt(first.term));
    expect(gone).toMatchObject({ result: "refused", message: expect.stringContaining(`coordinator term ${first.term} (coord-a) no longer holds the coordinator lock`) });
    const second = await becomeActive("coord-b");
    holder = second.client;
    expect(second.term).toBe(first.term + 1);
    const deposed = await resign("deposed", BigInt(first.term));
    expect(deposed).toMatchObject({ result: "refused", message: expect.stringContaining(`comes from coordinator term ${first.term}, but the active coordinator is coord-b`) });
    expect((await state()).epochs).toEqual(before.epochs);
    expect(coordinator.latest()).toMatchObject({ role: "leader", epoch: 1, writeReady: true });

    // The active coordinator's order is obeyed.
    const honest = await resign("honest", BigInt(second.term));
    expect(honest.result).toBe("done");
    await waitFor(() => coordinator.latest()?.role !== "leader" || coordinator.latest()?.epoch !== 1 || undefined, { timeoutMs: 10_000, what: "epoch 1 ended" });
  });
});

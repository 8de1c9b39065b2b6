import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lockDatabaseLabel } from "../../core/lock-database.js";
import type { CommandAction, CommandOutcome } from "../../core/model.js";
import { SchemaName } from "../../db/identifiers.js";
import { TIMELINE_SQL, type DatabaseIdentity } from "../../db/leadership.js";
import { migrate } from "../../db/migrations.js";
import { startPgCluster, type PgCluster } from "../../pgcluster/index.js";
import { AgentProcess } from "../support/agents.js";
import { ScriptedAgent } from "./support/scripted-agent.js";
import { ScriptedCoordinator } from "../support/scripted-coordinator.js";

/*
 * The agent contract, run against the real agent (a child process) and
 * against the coordinator tests' ScriptedAgent, so the fake cannot drift
 * from the real thing: the same scenarios, the same expectations, and at the
 * end the two transcripts must be equal.
 */

/** The contract's commands: numbered, for the epoch the scenario names. */
class RecordingCoordinator extends ScriptedCoordinator {
  private nextId = 1;

  order(epoch: number, action: CommandAction, nodeId: string): Promise<CommandOutcome> {
    return this.command({ commandId: `contract-${this.nextId++}`, epoch, action, reason: "contract test" }, nodeId);
  }
}

/** One implementation of the agent contract, started against a coordinator. */
interface Implementation {
  readonly name: string;
  /** Starts the node; it connects to `coordinatorUrl` and reports. */
  start(o: { nodeId: string; clusterId: string; schema: string; databaseUrl: string; coordinatorUrl: string }): Promise<void>;
  /** Makes the node leader the way it becomes one without orders (the real agent campaigns on its own). */
  lead(): Promise<void>;
  stop(): Promise<void>;
}

const LEASE_MS = 1_500; // FAST_TIMINGS' --lease, and what a ScriptedAgent reports

function realAgent(): Implementation {
  let proc: AgentProcess | undefined;
  return {
    name: "real agent (child process)",
    async start(o) {
      proc = await AgentProcess.start({
        nodeId: o.nodeId,
        databaseUrl: o.databaseUrl,
        coordinatorUrl: o.coordinatorUrl,
        args: ["--cluster-id", o.clusterId, "--schema", o.schema],
      });
    },
    // It campaigns by itself once its start-up grace has passed.
    lead: async () => undefined,
    stop: async () => {
      await proc?.process.stop();
    },
  };
}

function scriptedAgent(): Implementation {
  let agent: ScriptedAgent | undefined;
  return {
    name: "ScriptedAgent (coordinator tests' fake)",
    async start(o) {
      // A real agent applies the migrations itself; the fake leaves that to its coordinator.
      const db = new pg.Client({ connectionString: o.databaseUrl });
      await db.connect();
      try {
        await migrate(db, new SchemaName(o.schema));
      } finally {
        await db.end();
      }
      agent = await new ScriptedAgent({ ...o, reportIntervalMs: 200 }).start();
    },
    lead: async () => {
      await agent!.campaign();
    },
    stop: async () => {
      await agent?.stop();
    },
  };
}

/** What each implementation did, reduced to what must be equal between them. */
const transcripts = new Map<string, unknown[]>();

describe("agent contract: the real agent and the ScriptedAgent behave alike", () => {
  let cluster: PgCluster;
  let identity: DatabaseIdentity;

  beforeAll(async () => {
    cluster = await startPgCluster({ standbys: 0 });
    const [row] = await cluster.primary.query<{ system_identifier: string }>("SELECT system_identifier::text FROM pg_control_system()");
    const [tl] = await cluster.primary.query<{ tl: string }>(`SELECT ${TIMELINE_SQL} AS tl FROM pg_control_checkpoint() c`);
    identity = { systemIdentifier: row!.system_identifier, timeline: Number(tl!.tl), inRecovery: false };
  });
  afterAll(async () => {
    await cluster?.close();
  });

  for (const [index, make] of [realAgent, scriptedAgent].entries()) {
    const impl = make();
    const nodeId = `cp-node-${index + 1}`;
    const clusterId = `contract-${index + 1}`;
    const schema = `contract_${index + 1}`;
    const transcript: unknown[] = [];
    transcripts.set(impl.name, transcript);

    describe(impl.name, () => {
      let coordinator: RecordingCoordinator;
      /** The epoch the node's epoch guard compares with: leadership_state.epoch, read now. */
      const guardEpoch = async () => {
        const [row] = await cluster.primary.query<{ epoch: string }>(`SELECT epoch FROM ${new SchemaName(schema).q("leadership_state")} WHERE cluster_id = $1`, [clusterId]);
        return Number(row?.epoch ?? 0);
      };
      const step = (what: string, ack: CommandOutcome) => transcript.push([what, ack.result, ack.message.replace(/\d+/g, "N")]);

      beforeAll(async () => {
        coordinator = await new RecordingCoordinator().start();
        await impl.start({ nodeId, clusterId, schema, databaseUrl: cluster.primary.url(), coordinatorUrl: coordinator.server.url });
      });
      afterAll(async () => {
        await impl.stop();
        await coordinator?.close();
      });

      it("the first report carries the cluster, the typed lock database identity, the lease and the lock session pid", async () => {
        const first = await coordinator.report(() => true, "a first report");
        expect(first).toMatchObject({ nodeId, clusterId, epoch: 0, leaseMs: LEASE_MS });
        const r = await coordinator.report((x) => x.lockDatabase !== undefined, "a report with the lock database identity");
        expect(r.lockDatabase).toEqual({ systemIdentifier: identity.systemIdentifier, timeline: identity.timeline });
        // The old text field stays, for display: the label of the same identity.
        expect(r.lockDatabaseId).toBe(lockDatabaseLabel(r.lockDatabase));
        expect(r.lockDatabaseWritable).toBe(true);
        const pid = await coordinator.report((x) => x.lockBackendPid > 0, "a report naming the lock session pid");
        const [session] = await cluster.primary.query<{ application_name: string }>("SELECT application_name FROM pg_stat_activity WHERE pid = $1", [pid.lockBackendPid]);
        expect(session?.application_name).toBe(nodeId);
        transcript.push(["first report", first.epoch, first.leaseMs, r.lockDatabaseWritable]);
      });

      it("as leader it reports role, epoch and the pid that holds the lock in pg_locks", async () => {
        await impl.lead();
        const r = await coordinator.report((x) => x.role === "leader" && x.sessionLockHeld && x.epoch > 0, "a leader report");
        expect(r).toMatchObject({ role: "leader", sessionLockHeld: true, held: false, observedLeader: { holderId: nodeId, epoch: r.epoch } });
        const holders = await cluster.primary.query<{ pid: number }>(
          "SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = $1",
          [nodeId],
        );
        expect(holders.map((h) => h.pid)).toEqual([r.lockBackendPid]);
        expect(await guardEpoch()).toBe(r.epoch);
        transcript.push(["leader report", r.role, r.sessionLockHeld]);
      });

      it("refuses a command for another epoch, and changes nothing", async () => {
        const current = await guardEpoch();
        const ack = await coordinator.order(current + 5, { kind: "resign", hold: false }, nodeId);
        expect(ack).toMatchObject({ result: "refused", epoch: current });
        expect(ack.message).toBe(`epoch guard: command is for epoch ${current + 5}, current epoch is ${current}`);
        step("resign, wrong epoch", ack);
        const from = coordinator.reports.length;
        expect(await coordinator.report(() => true, "a report after the refusal", from)).toMatchObject({ role: "leader", epoch: current });
      });

      it("resigns and holds on a Resign{hold} for its epoch", async () => {
        const current = await guardEpoch();
        const from = coordinator.reports.length;
        const ack = await coordinator.order(current, { kind: "resign", hold: true }, nodeId);
        expect(ack).toMatchObject({ result: "done", epoch: 0 });
        expect(ack.resignedAt).toBeInstanceOf(Date);
        step("resign with hold", { ...ack, message: "" });
        const r = await coordinator.report((x) => x.held && !x.sessionLockHeld, "a held report", from);
        expect(r).toMatchObject({ role: "held", epoch: 0, writeReady: false });
      });

      it("acks Hold while held, refuses a Campaign for another epoch, then campaigns above the floor", async () => {
        const current = await guardEpoch();
        const hold = await coordinator.order(current, { kind: "hold" }, nodeId);
        expect(hold.result).toBe("done");
        step("hold", { ...hold, message: "" });

        const wrong = await coordinator.order(current + 1, { kind: "campaign", epochFloor: current + 10, waitMs: 0 }, nodeId);
        expect(wrong).toMatchObject({ result: "refused" });
        expect(wrong.message).toBe(`epoch guard: command is for epoch ${current + 1}, current epoch is ${current}`);
        step("campaign, wrong epoch", wrong);

        const from = coordinator.reports.length;
        const campaign = await coordinator.order(current, { kind: "campaign", epochFloor: current + 10, waitMs: 0 }, nodeId);
        expect(campaign).toMatchObject({ result: "done", epoch: current + 11 });
        step("campaign above the floor", { ...campaign, message: "" });
        await coordinator.report((x) => x.role === "leader" && x.epoch === current + 11 && !x.held, "a leader report for the new epoch", from);
      });

      it("acks Release as leader and stays leader", async () => {
        const current = await guardEpoch();
        const ack = await coordinator.order(current, { kind: "release" }, nodeId);
        expect(ack.result).toBe("done");
        step("release as leader", { ...ack, message: "" });
        const from = coordinator.reports.length;
        expect(await coordinator.report(() => true, "a report after release", from)).toMatchObject({ role: "leader", epoch: current });
      });
    });
  }

  it("both implementations left the same transcript", () => {
    const [real, scripted] = [...transcripts.values()];
    expect(real!.length).toBeGreaterThan(5);
    expect(scripted).toEqual(real);
  });
});

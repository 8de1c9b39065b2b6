import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { createWritableIterable, type WritableIterable } from "@connectrpc/connect/protocol";
import type { MessageInitShape } from "@bufbuild/protobuf";
import pg from "pg";
import { CLUSTER_ID_HEADER, NODE_ID_HEADER } from "../../core/metadata.js";
import { lockDatabaseLabel } from "../../core/lock-database.js";
import { leaderReport } from "../../coordinator/view/builders.js";
import { readDatabaseIdentity } from "../../db/leadership.js";
import { AgentService, type ConnectRequestSchema } from "../../gen/autonomy/ha/v1/agent_pb.js";
import { reportToWire } from "../../rpc/wire.js";
import { SCRIPTED_LEASE_MS, ScriptedAgent } from "../../test/coordinator/support/scripted-agent.js";

type Outgoing = MessageInitShape<typeof ConnectRequestSchema>;

/** Nothing listens here: the lock holder's own stream is not the one the bench times. */
const NOWHERE = "http://127.0.0.1:1";

/**
 * The report-load benches' probe: a node that really holds its cluster's
 * advisory lock with an open epoch (a ScriptedAgent does the database side
 * and its heartbeats) and reports as the leader on a stream of our own, which
 * names its cluster in the x-autonomy-cluster-id header as a real agent's does,
 * so that it works on a coordinator serving one cluster or a hundred. Each
 * `flip` writes one leader report with Write-Ready on or off; the coordinator
 * publishes the change as WRITE_READY_CHANGED once the report is in its view.
 */
export class ProbeLeader {
  private readonly requests: WritableIterable<Outgoing> = createWritableIterable<Outgoing>();
  private readonly abort = new AbortController();
  private sequence = 0;

  private constructor(
    readonly nodeId: string,
    readonly clusterId: string,
    private readonly lock: ScriptedAgent,
    private readonly lockDatabase: { systemIdentifier: string; timeline: number },
  ) {}

  static async start(o: { nodeId: string; coordinatorUrl: string; databaseUrl: string; clusterId: string }): Promise<ProbeLeader> {
    // The lock side reports nowhere: two streams under one node id would replace each other.
    const lock = new ScriptedAgent({ nodeId: o.nodeId, coordinatorUrl: NOWHERE, databaseUrl: o.databaseUrl, clusterId: o.clusterId, schema: "public", reportIntervalMs: 200 });
    await lock.start();
    lock.silent = true;
    if (!(await lock.campaign())) {
      await lock.stop();
      throw new Error(`probe ${o.nodeId} could not take cluster ${o.clusterId}'s lock`);
    }
    const probe = new ProbeLeader(o.nodeId, o.clusterId, lock, await identity(o.databaseUrl));
    probe.connect(o.coordinatorUrl);
    return probe;
  }

  /** Writes one leader report now, Write-Ready on or off. */
  flip(writeReady: boolean): void {
    const r = leaderReport(this.nodeId, this.lock.epoch, {
      sequence: ++this.sequence,
      clusterId: this.clusterId,
      sentAt: new Date(),
      writeReady,
      writeReadyReason: writeReady ? "" : "bench probe: Write-Ready off",
      lockBackendPid: this.lock.pid,
      lockConfirmedAt: new Date(),
      observedLeader: { holderId: this.nodeId, epoch: this.lock.epoch, acquiredAt: undefined, writeReady, heartbeatAt: undefined },
      lockDatabaseId: lockDatabaseLabel(this.lockDatabase),
      lockDatabase: this.lockDatabase,
      leaseMs: SCRIPTED_LEASE_MS,
      endpoint: `http://127.0.0.1:1/${this.nodeId}`,
      version: "bench",
    });
    this.requests.write({ message: { case: "report", value: reportToWire(r) } }).catch(() => undefined);
  }

  async stop(): Promise<void> {
    this.requests.close();
    this.abort.abort();
    await this.lock.stop();
  }

  private connect(url: string): void {
    // No keepalive PINGs (see bench/load/report-client.ts): the probe must outlive an overloaded coordinator.
    const client = createClient(AgentService, createGrpcTransport({ baseUrl: url }));
    const responses = client.connect(this.requests, { headers: { [NODE_ID_HEADER]: this.nodeId, [CLUSTER_ID_HEADER]: this.clusterId }, signal: this.abort.signal });
    // Commands (none expected for a Write-Ready leader) are read and left unanswered.
    void (async () => {
      for await (const _ of responses);
    })().catch(() => undefined);
  }
}

async function identity(databaseUrl: string): Promise<{ systemIdentifier: string; timeline: number }> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const id = await readDatabaseIdentity(client);
    return { systemIdentifier: id.systemIdentifier, timeline: id.timeline };
  } finally {
    await client.end();
  }
}

import { createWritableIterable, type WritableIterable } from "@connectrpc/connect/protocol";
import type { MessageInitShape } from "@bufbuild/protobuf";
import pg from "pg";
import { NODE_ID_HEADER } from "../../../core/metadata.js";
import { lockDatabaseLabel, type LockDatabaseIdentity } from "../../../core/lock-database.js";
import { unknownReplication, type CommandOutcome, type NodeCommand, type NodeReport, type NodeRole } from "../../../core/model.js";
import { LOCK_CLASS_ID, SchemaName } from "../../../db/identifiers.js";
import { closeEpoch, openEpoch, readDatabaseIdentity, readLeadership } from "../../../db/leadership.js";
import { AgentService, type ConnectRequestSchema } from "../../../gen/autonomy/ha/v1/agent_pb.js";
import { clientFor, type ClientCredentials } from "../../../rpc/client.js";
import { loadClientTls } from "../../../rpc/auth/tls.js";
import { activePki } from "../../support/pki.js";
import { ackToWire, commandFromWire, reportToWire } from "../../../rpc/wire.js";

type Outgoing = MessageInitShape<typeof ConnectRequestSchema>;

export interface ScriptedAgentOptions {
  readonly nodeId: string;
  readonly coordinatorUrl: string;
  /** The lock database this node campaigns on. */
  readonly databaseUrl: string;
  readonly clusterId: string;
  readonly schema: string;
  readonly priority?: number;
  readonly nofailover?: boolean;
  /** Heartbeat report interval. */
  readonly reportIntervalMs?: number;
  /** The --lease it reports; default SCRIPTED_LEASE_MS. */
  readonly leaseMs?: number;
}

/** The lease a scripted agent reports, as the real agents in tests run (FAST_TIMINGS). */
export const SCRIPTED_LEASE_MS = 1_500;

/**
 * A stand-in agent for coordinator tests: a real gRPC stream that reports and
 * answers commands per the agent contract (epoch guard, resign, campaign with
 * wait, hold, release), and real database effects (advisory lock with
 * application_name = node id, open_epoch/close_epoch, heartbeat_at), so the
 * coordinator's database truth is the real thing. Tests script deviations
 * through `overrides` and `reply`.
 */
export class ScriptedAgent {
  readonly nodeId: string;
  role: NodeRole = "follower";
  epoch = 0;
  highestSeen = 0;
  /** Fields forced into every report (lag, write-ready, ...). */
  overrides: Partial<NodeReport> = {};
  /** Answer a command yourself; return undefined to fall through to the contract. */
  reply: ((c: NodeCommand) => CommandOutcome | undefined | Promise<CommandOutcome | undefined>) | undefined;
  /** Stop heartbeats (reports and leadership_state.heartbeat_at), as a SIGSTOPped process would. */
  frozen = false;
  /** Stop reporting only: a slow process whose lock session still heartbeats. */
  silent = false;
  readonly commands: NodeCommand[] = [];

  private readonly db: pg.Client;
  private readonly schema: SchemaName;
  private requests: WritableIterable<Outgoing> | undefined;
  private abort = new AbortController();
  private sequence = 0;
  private timer: NodeJS.Timeout | undefined;
  private lockDatabase: LockDatabaseIdentity | undefined;
  private observed = { holderId: "", epoch: 0 };
  private standing: { until: number; floor: number; cancelled: boolean } | undefined;
  private streamError: unknown;
  private closed = false;
  private campaigning: Promise<boolean> | undefined;

  private credentials: ClientCredentials = {};

  constructor(private readonly options: ScriptedAgentOptions) {
    this.nodeId = options.nodeId;
    this.schema = new SchemaName(options.schema);
    this.db = new pg.Client({ connectionString: options.databaseUrl, application_name: options.nodeId });
    this.db.on("error", () => undefined);
  }

  /** The backend pid of this node's lock session. */
  get pid(): number {
    return (this.db as unknown as { processID: number }).processID;
  }

  get held(): boolean {
    return this.role === "held";
  }

  get isLeader(): boolean {
    return this.role === "leader";
  }

  /** Why the coordinator ended our stream, if it did. */
  get error(): unknown {
    return this.streamError;
  }

  async start(): Promise<this> {
    // With an active test PKI, an agent certificate naming this node, as a real agent has.
    const pki = activePki();
    if (pki) {
      const c = await pki.ca.issue(this.nodeId, "agent");
      this.credentials = { tls: loadClientTls({ cert: c.cert, key: c.key, ca: pki.ca.ca }), serverRole: "coordinator" };
    }
    await this.db.connect();
    const id = await readDatabaseIdentity(this.db);
    this.lockDatabase = { systemIdentifier: id.systemIdentifier, timeline: id.timeline };
    await this.refreshObserved();
    this.connectStream();
    await this.report();
    this.timer = setInterval(() => void this.tick(), this.options.reportIntervalMs ?? 100);
    return this;
  }

  /** Opens a (new) stream to the coordinator. */
  connectStream(): void {
    this.abort = new AbortController();
    const requests = createWritableIterable<Outgoing>();
    this.requests = requests;
    this.sequence = 0;
    const client = clientFor(AgentService, this.options.coordinatorUrl, { metadata: { [NODE_ID_HEADER]: this.nodeId }, credentials: this.credentials });
    const responses = client.connect(this.requests, { signal: this.abort.signal });
    void (async () => {
      try {
        for await (const msg of responses) {
          if (msg.message.case === "command") void this.handle(commandFromWire(msg.message.value));
        }
      } catch (err) {
        this.streamError = err;
      }
      requests.close();
    })();
  }

  /**
   * Takes the lock now and opens an epoch above `floor`; false when someone
   * else holds it. One at a time: a test's own campaign and the coordinator's
   * order can overlap, and advisory locks stack within a session.
   */
  campaign(floor = 0): Promise<boolean> {
    if (this.isLeader) return Promise.resolve(true);
    this.campaigning ??= this.takeLock(floor).finally(() => (this.campaigning = undefined));
    return this.campaigning;
  }

  private async takeLock(floor: number): Promise<boolean> {
    const r = await this.db.query<{ ok: boolean }>("SELECT pg_try_advisory_lock($1, hashtext($2)) AS ok", [LOCK_CLASS_ID, this.options.clusterId]);
    if (!r.rows[0]!.ok) return false;
    const opened = await openEpoch(this.db, this.schema, this.options.clusterId, this.nodeId, Math.max(floor, this.highestSeen));
    this.epoch = opened.epoch;
    this.highestSeen = Math.max(this.highestSeen, opened.epoch);
    this.role = "leader";
    await this.refreshObserved();
    await this.report();
    return true;
  }

  async resign(hold: boolean): Promise<Date> {
    const at = await closeEpoch(this.db, this.schema, this.options.clusterId, this.nodeId, this.epoch, "resigned");
    await this.db.query("SELECT pg_advisory_unlock($1, hashtext($2))", [LOCK_CLASS_ID, this.options.clusterId]);
    this.epoch = 0;
    this.role = hold ? "held" : "follower";
    await this.refreshObserved();
    await this.report();
    return at;
  }

  /** Sends a report now. */
  async report(): Promise<void> {
    if (!this.requests || this.closed) return;
    const leader = this.isLeader;
    const report: Omit<NodeReport, "nodeId"> = {
      sequence: ++this.sequence,
      clusterId: this.options.clusterId,
      sentAt: new Date(),
      role: this.role,
      sessionLockHeld: leader,
      writeReady: leader,
      writeReadyReason: leader ? "" : "not the leader",
      epoch: this.epoch,
      observedLeader: { holderId: this.observed.holderId, epoch: this.observed.epoch, acquiredAt: undefined, writeReady: false, heartbeatAt: undefined },
      highestEpochSeen: Math.max(this.highestSeen, this.observed.epoch),
      // Like the real agent: the lock session's pid whenever the session is up, leader or not.
      lockBackendPid: this.pid,
      lockConfirmedAt: leader ? new Date() : undefined,
      priority: this.options.priority ?? 0,
      nofailover: this.options.nofailover ?? false,
      replication: leader ? { ...unknownReplication, lagStatus: "ok", replicaCount: 1, maxReplayLagSeconds: 0.01, maxWriteLagSeconds: 0.005 } : unknownReplication,
      localDatabase: undefined,
      lockDatabaseId: lockDatabaseLabel(this.overrides.lockDatabase ?? this.lockDatabase),
      lockDatabase: this.lockDatabase,
      lockDatabaseWritable: true,
      region: "",
      endpoint: `http://127.0.0.1:1/${this.nodeId}`,
      databaseError: "",
      version: "scripted",
      minSyncReplicas: 0,
      held: this.role === "held",
      leaseMs: this.options.leaseMs ?? SCRIPTED_LEASE_MS,
      ...this.overrides,
    };
    this.write({ message: { case: "report", value: reportToWire(report) } });
  }

  /** Sends a raw message on the stream (hostile-input tests). */
  async send(message: Outgoing): Promise<void> {
    this.write(message);
  }

  /** Writes resolve only once the transport consumed them, and never after it failed: do not wait. */
  private write(message: Outgoing): void {
    this.requests?.write(message).catch(() => undefined);
  }

  /** The process dies: stream reset, lock session gone. */
  async crash(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    this.abort.abort();
    await this.db.end().catch(() => undefined);
    this.role = "follower";
  }

  async stop(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.requests?.close();
    this.abort.abort();
    await this.db.end().catch(() => undefined);
  }

  private async tick(): Promise<void> {
    if (this.frozen || this.closed) return;
    try {
      if (this.isLeader) {
        await this.db.query(`UPDATE ${this.schema.q("leadership_state")} SET heartbeat_at = now() WHERE cluster_id = $1 AND holder_id = $2 AND epoch = $3`, [
          this.options.clusterId,
          this.nodeId,
          this.epoch,
        ]);
      }
      await this.refreshObserved();
      if (!this.silent) await this.report();
    } catch {
      // the test's database may be going away
    }
  }

  private async refreshObserved(): Promise<number> {
    const row = await readLeadership(this.db, this.schema, this.options.clusterId).catch(() => undefined);
    if (row) {
      this.observed = { holderId: row.holderId ?? "", epoch: row.epoch };
      this.highestSeen = Math.max(this.highestSeen, row.epoch);
    }
    return this.observed.epoch;
  }

  private async handle(c: NodeCommand): Promise<void> {
    this.commands.push(c);
    let outcome: CommandOutcome;
    try {
      outcome = (await this.reply?.(c)) ?? (await this.contract(c));
    } catch (err) {
      outcome = { commandId: c.commandId, result: "failed", message: String(err), epoch: this.epoch, resignedAt: undefined };
    }
    this.write({ message: { case: "ack", value: ackToWire(outcome) } });
  }

  private async contract(c: NodeCommand): Promise<CommandOutcome> {
    const base = { commandId: c.commandId, resignedAt: undefined };
    const observed = await this.refreshObserved();
    if (c.epoch !== observed) return { ...base, result: "refused", message: `epoch guard: command is for epoch ${c.epoch}, current epoch is ${observed}`, epoch: this.epoch };
    switch (c.action.kind) {
      case "resign": {
        if (!this.isLeader) return { ...base, result: "refused", message: "not the leader", epoch: 0 };
        const at = await this.resign(c.action.hold);
        return { ...base, result: "done", message: "resigned", epoch: 0, resignedAt: at };
      }
      case "campaign": {
        if (this.role === "held") this.role = "follower";
        this.cancelStanding();
        const floor = c.action.epochFloor;
        if (await this.campaign(floor)) return { ...base, result: "done", message: `acquired epoch ${this.epoch}`, epoch: this.epoch };
        if (c.action.waitMs <= 0) return { ...base, result: "failed", message: "lock is held by another session", epoch: 0 };
        const standing = { until: Date.now() + c.action.waitMs, floor, cancelled: false };
        this.standing = standing;
        while (!standing.cancelled && Date.now() < standing.until && !this.closed) {
          if (this.isLeader) break;
          await new Promise((r) => setTimeout(r, 5));
          if (!standing.cancelled && (await this.campaign(floor).catch(() => false))) break;
        }
        if (this.standing === standing) this.standing = undefined;
        if (this.isLeader) return { ...base, result: "done", message: `acquired epoch ${this.epoch}`, epoch: this.epoch };
        return { ...base, result: "failed", message: standing.cancelled ? "cancelled" : "wait ended", epoch: 0 };
      }
      case "hold":
        this.cancelStanding();
        if (this.isLeader) await this.resign(true);
        this.role = "held";
        await this.report();
        return { ...base, result: "done", message: "holding", epoch: 0 };
      case "release":
        this.cancelStanding();
        if (this.role === "held") this.role = "follower";
        await this.report();
        return { ...base, result: "done", message: "released", epoch: this.epoch };
    }
  }

  private cancelStanding(): void {
    if (this.standing) this.standing.cancelled = true;
    this.standing = undefined;
  }
}

/** A bare agent stream under any node id (no database, no contract): for hostile-client tests. */
export interface RawStream {
  /** Writes one message; does not wait for the transport. */
  send(message: Outgoing): void;
  /** Resolves with the error the stream ended with (a ConnectError), or undefined when it ended cleanly. */
  readonly ended: Promise<unknown>;
  /** Whether the stream has ended. */
  readonly done: boolean;
  close(): void;
}

export function openRawStream(coordinatorUrl: string, nodeId: string): RawStream {
  const abort = new AbortController();
  const requests = createWritableIterable<Outgoing>();
  const client = clientFor(AgentService, coordinatorUrl, { metadata: { [NODE_ID_HEADER]: nodeId } });
  let done = false;
  const ended = (async () => {
    try {
      for await (const _msg of client.connect(requests, { signal: abort.signal })) {
        // commands to a rogue are ignored
      }
      return undefined;
    } catch (err) {
      return err;
    } finally {
      done = true;
      requests.close();
    }
  })();
  return {
    send: (message) => void requests.write(message).catch(() => undefined),
    ended,
    get done() {
      return done;
    },
    close: () => {
      requests.close();
      abort.abort();
    },
  };
}

/** A report as a real agent would send it, with `overrides`, ready for RawStream.send. */
export function reportMessage(nodeId: string, clusterId: string, overrides: Partial<NodeReport> = {}): Outgoing {
  const report: Omit<NodeReport, "nodeId"> = {
    sequence: 1,
    clusterId,
    sentAt: new Date(),
    role: "follower",
    sessionLockHeld: false,
    writeReady: false,
    writeReadyReason: "not the leader",
    epoch: 0,
    observedLeader: { holderId: "", epoch: 0, acquiredAt: undefined, writeReady: false, heartbeatAt: undefined },
    highestEpochSeen: 0,
    lockBackendPid: 0,
    lockConfirmedAt: undefined,
    priority: 0,
    nofailover: false,
    replication: unknownReplication,
    localDatabase: undefined,
    lockDatabaseId: "",
    lockDatabase: undefined,
    lockDatabaseWritable: true,
    region: "",
    endpoint: `http://127.0.0.1:1/${nodeId}`,
    databaseError: "",
    version: "raw",
    minSyncReplicas: 0,
    held: false,
    leaseMs: 0,
    ...overrides,
  };
  return { message: { case: "report", value: reportToWire(report) } };
}

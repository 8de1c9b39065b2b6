import { randomUUID } from "node:crypto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Clock } from "../../core/clock.js";
import { ErrorCode, HaError, describeError, invalidArgument, unavailable } from "../../core/errors.js";
import type { Logger } from "../../core/log.js";
import { NODE_ID_HEADER } from "../../core/metadata.js";
import type { CommandAction, CommandOutcome, NodeReport } from "../../core/model.js";
import { validateNodeId } from "../../db/identifiers.js";
import type { ConnectRequest, ConnectResponseSchema } from "../../gen/autonomy/ha/v1/agent_pb.js";
import { ackFromWire, commandToWire, reportFromWire } from "../../rpc/wire.js";
import type { CallContext } from "../../rpc/service-adapter.js";
import type { NodeState } from "../view/cluster-view.js";
import { Outbox } from "./outbox.js";
import { validateReport } from "./report-validation.js";

type Outgoing = MessageInitShape<typeof ConnectResponseSchema>;

interface Session {
  readonly nodeId: string;
  readonly streamId: number;
  readonly outbox: Outbox<Outgoing>;
  lastSequence: number;
}

interface Pending {
  readonly nodeId: string;
  readonly streamId: number;
  readonly kind: CommandAction["kind"];
  readonly resolve: (o: CommandOutcome) => void;
  readonly reject: (e: unknown) => void;
  readonly timer: NodeJS.Timeout;
}

export interface SessionEvents {
  /** A report was applied; `material` when it changed a claim, role, epoch or health. */
  report(nodeId: string, material: boolean): void;
  /** A node's stream opened or closed. */
  connection(nodeId: string, connected: boolean): void;
}

/**
 * The agents' streams: one per node (a newer stream replaces an older one),
 * each node's last report and liveness, and commands with their acks.
 */
export class NodeSessions {
  private readonly states = new Map<string, NodeState & { streamId: number }>();
  private readonly sessions = new Map<string, Session>();
  private readonly pending = new Map<string, Pending>();
  private nextStreamId = 1;
  private stopped = false;

  constructor(
    private readonly clusterId: string,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly events: SessionEvents,
  ) {}

  nodes(): NodeState[] {
    return [...this.states.values()].map(({ streamId: _s, ...n }) => n);
  }

  node(nodeId: string): NodeState | undefined {
    return this.states.get(nodeId);
  }

  isConnected(nodeId: string): boolean {
    return this.sessions.has(nodeId);
  }

  /** The AgentService.Connect handler. */
  async *connect(requests: AsyncIterable<ConnectRequest>, ctx: CallContext): AsyncIterable<Outgoing> {
    const raw = ctx.metadata.get(NODE_ID_HEADER);
    if (!raw) throw invalidArgument(`agent stream without ${NODE_ID_HEADER} metadata; every agent names its node`);
    const nodeId = validateNodeId(raw);
    if (this.stopped) throw unavailable("coordinator is shutting down");
    const session: Session = { nodeId, streamId: this.nextStreamId++, outbox: new Outbox<Outgoing>(), lastSequence: 0 };
    const previous = this.sessions.get(nodeId);
    if (previous) {
      this.log.info({ node_id: nodeId }, "a newer stream replaces the open one");
      this.endSession(previous, new HaError(ErrorCode.Aborted, `stream replaced by a newer stream of ${nodeId}`));
    }
    this.sessions.set(nodeId, session);
    this.log.info({ node_id: nodeId, peer: ctx.peer }, "agent connected");
    const known = this.states.get(nodeId);
    if (known) this.states.set(nodeId, { ...known, connected: true, streamId: session.streamId });
    this.events.connection(nodeId, true);
    ctx.signal.addEventListener("abort", () => this.endSession(session), { once: true });
    void this.consume(requests, session);
    yield* session.outbox;
  }

  /**
   * Sends a command and resolves with the node's ack. `epoch` defaults to the
   * epoch the node last said it observes in leadership_state, which is what
   * its epoch guard compares with.
   */
  send(nodeId: string, action: CommandAction, reason: string, options: { timeoutMs: number; epoch?: number }): Promise<CommandOutcome> {
    const session = this.sessions.get(nodeId);
    if (!session) return Promise.reject(unavailable(`${nodeId} is not connected to the coordinator`));
    const report = this.states.get(nodeId)?.report;
    const epoch = options.epoch ?? (report ? report.observedLeader.epoch || report.epoch : 0);
    const commandId = randomUUID();
    return new Promise<CommandOutcome>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(commandId);
        reject(new HaError(ErrorCode.DeadlineExceeded, `${nodeId} did not answer ${action.kind} within ${options.timeoutMs}ms`));
      }, options.timeoutMs);
      this.pending.set(commandId, { nodeId, streamId: session.streamId, kind: action.kind, resolve, reject, timer });
      this.log.info({ node_id: nodeId, command_id: commandId, action: action.kind, epoch, reason }, "command sent");
      session.outbox.push({ message: { case: "command", value: commandToWire({ commandId, epoch, action, reason }) } });
    });
  }

  /** Ends every stream and fails every pending command. */
  stop(): void {
    this.stopped = true;
    for (const s of [...this.sessions.values()]) this.endSession(s, unavailable("coordinator is shutting down"));
  }

  private async consume(requests: AsyncIterable<ConnectRequest>, session: Session): Promise<void> {
    try {
      for await (const msg of requests) {
        if (this.sessions.get(session.nodeId) !== session) break;
        if (msg.message.case === "report") this.applyReport(session, msg.message.value);
        else if (msg.message.case === "ack") this.applyAck(session, msg.message.value);
      }
      this.endSession(session);
    } catch (err) {
      const error = err instanceof HaError ? err : undefined;
      if (!error) this.log.debug({ node_id: session.nodeId, err: describeError(err) }, "agent stream ended");
      else this.log.warn({ node_id: session.nodeId, err: error.message }, "agent stream closed: bad input");
      this.endSession(session, error);
    }
  }

  private applyReport(session: Session, wire: NonNullable<Extract<ConnectRequest["message"], { case: "report" }>["value"]>): void {
    validateReport(session.nodeId, wire, this.clusterId);
    const seq = Number(wire.sequence);
    if (seq !== 0 && seq <= session.lastSequence) {
      this.log.debug({ node_id: session.nodeId, sequence: seq, last: session.lastSequence }, "report out of order: dropped");
      return;
    }
    session.lastSequence = seq;
    const report = reportFromWire(session.nodeId, wire);
    const now = this.clock.monotonicMs();
    const prev = this.states.get(session.nodeId);
    const claims = report.sessionLockHeld || report.writeReady;
    const continued =
      prev !== undefined && prev.streamId === session.streamId && prev.claimSinceMs !== undefined && prev.report.epoch === report.epoch;
    this.states.set(session.nodeId, {
      nodeId: session.nodeId,
      report,
      connected: true,
      lastReportMs: now,
      claimSinceMs: claims ? (continued ? prev.claimSinceMs : now) : undefined,
      streamId: session.streamId,
    });
    this.events.report(session.nodeId, !prev || !prev.connected || materialChange(prev.report, report));
  }

  private applyAck(session: Session, wire: NonNullable<Extract<ConnectRequest["message"], { case: "ack" }>["value"]>): void {
    const outcome = ackFromWire(wire);
    const p = this.pending.get(outcome.commandId);
    if (!p || p.nodeId !== session.nodeId) {
      this.log.warn({ node_id: session.nodeId, command_id: outcome.commandId.slice(0, 100) }, "ack for an unknown command: ignored");
      return;
    }
    this.pending.delete(outcome.commandId);
    clearTimeout(p.timer);
    this.log.info({ node_id: session.nodeId, command_id: outcome.commandId, action: p.kind, result: outcome.result, epoch: outcome.epoch, message: outcome.message }, "command acked");
    p.resolve(outcome);
  }

  private endSession(session: Session, error?: unknown): void {
    session.outbox.close(error);
    if (this.sessions.get(session.nodeId) !== session) return;
    this.sessions.delete(session.nodeId);
    const state = this.states.get(session.nodeId);
    if (state) this.states.set(session.nodeId, { ...state, connected: false });
    for (const [id, p] of this.pending) {
      if (p.nodeId !== session.nodeId) continue;
      this.pending.delete(id);
      clearTimeout(p.timer);
      p.reject(unavailable(`${session.nodeId} disconnected before answering ${p.kind}`));
    }
    this.log.info({ node_id: session.nodeId }, "agent disconnected");
    this.events.connection(session.nodeId, false);
  }
}

function materialChange(a: NodeReport, b: NodeReport): boolean {
  return (
    a.role !== b.role ||
    a.sessionLockHeld !== b.sessionLockHeld ||
    a.writeReady !== b.writeReady ||
    a.epoch !== b.epoch ||
    a.lockDatabaseId !== b.lockDatabaseId ||
    a.lockDatabaseWritable !== b.lockDatabaseWritable ||
    a.databaseError !== b.databaseError ||
    a.nofailover !== b.nofailover ||
    a.priority !== b.priority ||
    a.replication.lagStatus !== b.replication.lagStatus ||
    a.localDatabase?.inRecovery !== b.localDatabase?.inRecovery ||
    a.localDatabase?.lagStatus !== b.localDatabase?.lagStatus ||
    a.observedLeader.holderId !== b.observedLeader.holderId ||
    a.observedLeader.epoch !== b.observedLeader.epoch
  );
}

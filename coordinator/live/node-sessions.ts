import { randomUUID } from "node:crypto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Clock } from "../../core/clock.js";
import { ErrorCode, HaError, describeError, invalidArgument, unavailable } from "../../core/errors.js";
import { lockDatabaseLabel } from "../../core/lock-database.js";
import type { Logger } from "../../core/log.js";
import { NODE_ID_HEADER } from "../../core/metadata.js";
import type { CommandAction, CommandOutcome, NodeReport } from "../../core/model.js";
import { validateNodeId } from "../../db/identifiers.js";
import type { ConnectRequest, ConnectResponseSchema } from "../../gen/autonomy/ha/v1/agent_pb.js";
import { ackFromWire, commandToWire, reportFromWire } from "../../rpc/wire.js";
import type { CallContext } from "../../rpc/service-adapter.js";
import { hasRole } from "../../rpc/auth/principal.js";
import type { AuditInput } from "../audit/audit-log.js";
import { AuditType } from "../audit/audit-event.js";
import { defaultPolicy, type CoordinatorPolicy } from "../config.js";
import type { NodeState } from "../view/cluster-view.js";
import { Outbox } from "./outbox.js";
import { validateReport } from "./report-validation.js";

type Outgoing = MessageInitShape<typeof ConnectResponseSchema>;

interface Session {
  readonly nodeId: string;
  readonly streamId: number;
  readonly outbox: Outbox<Outgoing>;
  readonly peer: string;
  readonly principal: string;
  lastSequence: number;
  /** When the stream opened or last delivered a report (monotonic). */
  lastActivityMs: number;
}

/** The parts of the policy that bound the streams. */
export type SessionLimits = Pick<CoordinatorPolicy, "reportStaleAfterMs" | "nodeExpiryMs" | "maxNodes">;

export interface SessionOptions {
  readonly limits?: SessionLimits;
  /** Where reports, connections and audit events go; or attach() them later, once. */
  readonly events?: SessionEvents;
  /** Ends every stream and fails every pending command when it aborts. */
  readonly signal?: AbortSignal;
  /**
   * The coordinator term commands are stamped with, or undefined while this
   * coordinator may not give orders (a standby): send() then refuses.
   * Without it, every command carries term 0.
   */
  readonly commandTerm?: () => number | undefined;
}

interface Pending {
  readonly nodeId: string;
  readonly streamId: number;
  readonly kind: CommandAction["kind"];
  readonly resolve: (o: CommandOutcome) => void;
  readonly reject: (e: unknown) => void;
  /** Aborted once the command is answered or abandoned: cancels its timeout. */
  readonly settled: AbortController;
}

/** What the sessions tell their owner (the engine). */
export interface SessionEvents {
  /** A report was applied; `material` when it changed a claim, role, epoch or health. */
  report(nodeId: string, material: boolean): void;
  /** A node's stream opened or closed. */
  connection(nodeId: string, connected: boolean): void;
  /** Writes an audit event; failures are the callee's to log. */
  audit?(input: AuditInput): void;
  /** The highest epoch the lock database confirmed: a report may not claim one far above it. */
  confirmedEpoch?(): number;
}

const detached: SessionEvents = { report: () => undefined, connection: () => undefined };

/**
 * The agents' streams: one per node, each node's last report and liveness,
 * and commands with their acks. A node id belongs to its established stream:
 * a second stream for it is refused while the first is alive, so nobody can
 * take over a live node's identity by connecting under its name.
 */
export class NodeSessions {
  private readonly states = new Map<string, NodeState & { streamId: number }>();
  private readonly sessions = new Map<string, Session>();
  private readonly pending = new Map<string, Pending>();
  /** Node ids with a stream but no report yet: with states, every node known (kept so admitting a stream is O(1)). */
  private readonly unreported = new Set<string>();
  private lastExpiryMs = Number.NEGATIVE_INFINITY;
  private nextStreamId = 1;
  private stopped = false;
  private readonly limits: SessionLimits;
  private readonly commandTerm: () => number | undefined;
  private events: SessionEvents;
  private attached: boolean;

  constructor(
    private readonly clusterId: string,
    private readonly clock: Clock,
    private readonly log: Logger,
    options: SessionOptions = {},
  ) {
    this.limits = options.limits ?? defaultPolicy;
    this.commandTerm = options.commandTerm ?? (() => 0);
    this.events = options.events ?? detached;
    this.attached = options.events !== undefined;
    options.signal?.addEventListener("abort", () => this.stop(), { once: true });
  }

  /**
   * Connects the sessions to their owner, once, before any stream is served:
   * the engine attaches itself when it is built, so neither needs the other
   * to exist first.
   */
  attach(events: SessionEvents): void {
    if (this.attached) throw new Error("node sessions already have an owner");
    this.events = events;
    this.attached = true;
  }

  private audit(input: AuditInput): void {
    this.events.audit?.(input);
  }

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
    this.authorize(nodeId, ctx);
    const now = this.clock.monotonicMs();
    const previous = this.sessions.get(nodeId);
    if (previous) this.replaceable(previous, ctx, now);
    this.admit(nodeId);
    const session: Session = {
      nodeId,
      streamId: this.nextStreamId++,
      outbox: new Outbox<Outgoing>(),
      peer: ctx.peer,
      principal: ctx.principal.name,
      lastSequence: 0,
      lastActivityMs: now,
    };
    if (previous) {
      this.log.info({ node_id: nodeId, peer: ctx.peer, previous_peer: previous.peer }, "a newer stream replaces a silent one");
      this.endSession(previous, new HaError(ErrorCode.Aborted, `stream replaced by a newer stream of ${nodeId}`));
    }
    this.sessions.set(nodeId, session);
    if (!this.states.has(nodeId)) this.unreported.add(nodeId);
    this.log.info({ node_id: nodeId, peer: ctx.peer }, "agent connected");
    const known = this.states.get(nodeId);
    if (known) this.states.set(nodeId, { ...known, connected: true, streamId: session.streamId });
    this.events.connection(nodeId, true);
    ctx.signal.addEventListener("abort", () => this.endSession(session), { once: true });
    void this.consume(requests, session);
    yield* session.outbox;
  }

  /**
   * Ends streams silent longer than the node expiry and forgets nodes that
   * have not reported that long (audited), so stray ids cannot grow the view.
   */
  expire(nowMs: number): string[] {
    const limit = this.limits.nodeExpiryMs;
    // Every evaluation asks; a walk over every node a few times per expiry is enough.
    if (nowMs - this.lastExpiryMs < Math.min(1_000, limit / 4)) return [];
    this.lastExpiryMs = nowMs;
    for (const s of this.sessions.values()) {
      if (nowMs - s.lastActivityMs > limit) {
        this.log.warn({ node_id: s.nodeId, peer: s.peer }, "agent stream silent past the node expiry: ended");
        this.endSession(s, new HaError(ErrorCode.DeadlineExceeded, `stream of ${s.nodeId} sent no report for more than ${limit}ms (node expiry)`));
      }
    }
    const expired: string[] = [];
    for (const [id, n] of this.states) {
      if (n.connected || this.sessions.has(id) || nowMs - n.lastReportMs <= limit) continue;
      this.states.delete(id);
      expired.push(id);
      const silentMs = Math.round(nowMs - n.lastReportMs);
      this.log.info({ node_id: id, silent_ms: silentMs }, "node expired: left the view");
      this.audit({
        type: AuditType.NodeExpired,
        node_id: id,
        epoch: n.report.epoch,
        message: `${id} left the view: no report for ${silentMs}ms (node expiry ${limit}ms)`,
        evidence: { silent_ms: silentMs, node_expiry_ms: limit, last_role: n.report.role, last_epoch: n.report.epoch },
      });
    }
    return expired;
  }

  /** Only an agent may open an agent stream, and a certificate binds it to the node it names. */
  private authorize(nodeId: string, ctx: CallContext): void {
    const p = ctx.principal;
    if (!hasRole(p, "agent")) {
      this.log.warn({ node_id: nodeId, principal: p.name, peer: ctx.peer }, "agent stream refused: caller lacks the agent role");
      throw new HaError(ErrorCode.PermissionDenied, `${p.name} may not open an agent stream: it lacks the agent role`);
    }
    // A certificate's CN and an agent token's NAME are the node it may report as.
    if (p.kind !== "anonymous" && p.nodeId !== nodeId) {
      const proof = p.kind === "certificate" ? "certificate" : "token";
      this.log.warn({ node_id: nodeId, principal: p.name, peer: ctx.peer }, `agent stream refused: node id does not match the ${proof}`);
      throw new HaError(
        ErrorCode.PermissionDenied,
        p.nodeId ? `stream names node ${nodeId} but its ${proof} names ${p.nodeId}` : `stream names node ${nodeId} but its ${proof} names no node`,
      );
    }
  }

  /**
   * A newer stream may take a node id from an older one only when the older
   * one is gone: its transport closed, or it has been silent past
   * report-stale-after (a reconnect after a half-open connection). Otherwise
   * the second stream is refused and audited.
   */
  private replaceable(previous: Session, ctx: CallContext, nowMs: number): void {
    const silentMs = nowMs - previous.lastActivityMs;
    if (previous.outbox.closed || silentMs > this.limits.reportStaleAfterMs) return;
    const message =
      `node ${previous.nodeId} already has a live stream (from ${previous.peer}, last report ${Math.round(silentMs)}ms ago); ` +
      `a second stream is refused until that one closes or is silent for more than ${this.limits.reportStaleAfterMs}ms`;
    this.log.warn({ node_id: previous.nodeId, peer: ctx.peer, existing_peer: previous.peer }, "second stream for a live node refused");
    this.audit({
      type: AuditType.NodeStreamRefused,
      node_id: previous.nodeId,
      caller: `${ctx.principal.name} (${ctx.peer})`,
      message,
      evidence: { peer: ctx.peer, principal: ctx.principal.name, existing_peer: previous.peer, existing_silent_ms: Math.round(silentMs) },
    });
    throw new HaError(ErrorCode.Aborted, message);
  }

  /** Refuses a node id beyond the cap of distinct known ids. */
  private admit(nodeId: string): void {
    if (this.states.has(nodeId) || this.sessions.has(nodeId)) return;
    const known = this.states.size + this.unreported.size;
    if (known >= this.limits.maxNodes) {
      this.log.warn({ node_id: nodeId, known }, "agent stream refused: node limit reached");
      // UNAVAILABLE (retryable) rather than a configuration refusal: a genuine
      // agent reconnects with backoff and gets in once a stray id expires.
      throw unavailable(
        `resource limit: this coordinator already knows ${known} nodes (max-nodes ${this.limits.maxNodes}); ` +
          `node ${nodeId} is refused until a node expires (node-expiry ${this.limits.nodeExpiryMs}ms)`,
      );
    }
  }

  /**
   * Sends a command and resolves with the node's ack. `epoch` defaults to the
   * epoch the node last said it observes in leadership_state, which is what
   * its epoch guard compares with.
   */
  send(nodeId: string, action: CommandAction, reason: string, options: { timeoutMs: number; epoch?: number }): Promise<CommandOutcome> {
    const coordinatorTerm = this.commandTerm();
    if (coordinatorTerm === undefined) return Promise.reject(unavailable(`this coordinator is a standby and gives no orders (${action.kind} to ${nodeId} not sent)`));
    const session = this.sessions.get(nodeId);
    if (!session) return Promise.reject(unavailable(`${nodeId} is not connected to the coordinator`));
    const report = this.states.get(nodeId)?.report;
    const epoch = options.epoch ?? (report ? report.observedLeader.epoch || report.epoch : 0);
    const commandId = randomUUID();
    return new Promise<CommandOutcome>((resolve, reject) => {
      const settled = new AbortController();
      this.clock.sleep(options.timeoutMs, settled.signal).then(
        () => {
          if (!this.pending.delete(commandId)) return;
          reject(new HaError(ErrorCode.DeadlineExceeded, `${nodeId} did not answer ${action.kind} within ${options.timeoutMs}ms`));
        },
        () => undefined, // answered or abandoned first
      );
      this.pending.set(commandId, { nodeId, streamId: session.streamId, kind: action.kind, resolve, reject, settled });
      this.log.info({ node_id: nodeId, command_id: commandId, action: action.kind, epoch, reason }, "command sent");
      session.outbox.push({ message: { case: "command", value: commandToWire({ commandId, epoch, action, reason, coordinatorTerm }) } });
    });
  }

  /** Ends every stream and fails every pending command. */
  stop(): void {
    this.stopped = true;
    for (const s of [...this.sessions.values()]) this.endSession(s, unavailable("coordinator is shutting down"));
  }

  private async consume(requests: AsyncIterable<ConnectRequest>, session: Session): Promise<void> {
    // Iterated by hand: leaving a for-await early calls return() on the
    // request stream, which destroys the gRPC call and loses the status
    // endSession is about to send.
    const it = requests[Symbol.asyncIterator]();
    try {
      for (;;) {
        const next = await it.next();
        if (next.done || this.sessions.get(session.nodeId) !== session) break;
        const msg = next.value;
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
    validateReport(session.nodeId, wire, this.clusterId, this.events.confirmedEpoch?.());
    const seq = Number(wire.sequence);
    if (seq !== 0 && seq <= session.lastSequence) {
      this.log.debug({ node_id: session.nodeId, sequence: seq, last: session.lastSequence }, "report out of order: dropped");
      return;
    }
    session.lastSequence = seq;
    const report = reportFromWire(session.nodeId, wire);
    const now = this.clock.monotonicMs();
    session.lastActivityMs = now;
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
    this.unreported.delete(session.nodeId);
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
    p.settled.abort();
    this.log.info({ node_id: session.nodeId, command_id: outcome.commandId, action: p.kind, result: outcome.result, epoch: outcome.epoch, message: outcome.message }, "command acked");
    p.resolve(outcome);
  }

  private endSession(session: Session, error?: unknown): void {
    session.outbox.close(error);
    if (this.sessions.get(session.nodeId) !== session) return;
    this.sessions.delete(session.nodeId);
    this.unreported.delete(session.nodeId);
    const state = this.states.get(session.nodeId);
    if (state) this.states.set(session.nodeId, { ...state, connected: false });
    for (const [id, p] of this.pending) {
      if (p.nodeId !== session.nodeId) continue;
      this.pending.delete(id);
      p.settled.abort();
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
    lockDatabaseLabel(a.lockDatabase) !== lockDatabaseLabel(b.lockDatabase) ||
    a.leaseMs !== b.leaseMs ||
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

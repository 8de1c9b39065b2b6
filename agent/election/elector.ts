import { EventEmitter } from "node:events";
import type { Clock } from "../../core/clock.js";
import { describeError } from "../../core/errors.js";
import type { Logger } from "../../core/log.js";
import type { CommandOutcome, LeaderView, NodeCommand, NodeRole } from "../../core/model.js";
import type { DatabaseTarget } from "../../db/connect.js";
import { TERM_CHANNEL, cancelLockWait, isTermNoticeFor } from "../../db/leadership.js";
import type { SideConnection } from "../../db/side-connection.js";
import type { AgentConfig } from "../config.js";
import { CommandQueue, expireOrderedCampaign, failed, runCommand, serveOrderedCampaign, type CommandContext } from "./commands.js";
import { follower, roleOf, termOf, type ElectionState } from "./election-state.js";
import { takeOverHungLeader } from "./hung-leader.js";
import { LeaderObserver } from "./leader-observer.js";
import type { DatabaseAuthority, LockServer } from "../../db/database-authority.js";
import { LockSession } from "./lock-session.js";
import { nextStep, type Quiet, type Step, type StepConfig, type StepKind } from "./next-step.js";
import { lockAuthority, writeReadiness, type Readiness, type Term } from "./readiness.js";
import { SessionKeeper } from "./session-keeper.js";
import { TermKeeper } from "./term-keeper.js";

/** Everything the rest of the agent may know about the election, at one instant. */
export interface ElectionSnapshot {
  readonly role: NodeRole;
  readonly term: Term | undefined;
  readonly sessionLockHeld: boolean;
  readonly lockBackendPid: number;
  readonly observed: LeaderView;
  readonly lockHolder: string | undefined;
  readonly highestEpochSeen: number;
  readonly held: boolean;
  readonly databaseError: string;
  readonly lockConfirmedAt: Date | undefined;
  /** The server the lock session is on, as read when it connected. */
  readonly lockServer: LockServer | undefined;
}

/** How the election defers to a coordinator while one is configured and reachable. */
export interface Coordination {
  readonly connected: () => boolean;
  /** No campaign of our own this long after start. */
  readonly startupGraceMs: number;
}

/** A wait on the lock is re-armed in slices, so it re-checks what it could miss (it is also interrupted on a change). */
const LOCK_WAIT_SLICE_MS = 5_000;

/**
 * The election as a thin loop: each pass reads what it knows, asks
 * nextStep() what to do, logs the decision when its kind changes, and does
 * only that. The parts do the work: SessionKeeper the lock session and its
 * backoff, TermKeeper the term and its lease fence (which fires even while
 * the loop is stuck), commands.ts the coordinator's commands and ordered
 * campaigns, LeaderObserver the leadership as read through the side
 * connection, takeOverHungLeader the end of a hung leader's session.
 * Emits "change" whenever the snapshot may have changed.
 */
export class Elector extends EventEmitter<{ change: [] }> {
  private state: ElectionState = follower;
  private readonly sessions: SessionKeeper;
  private readonly observer: LeaderObserver;
  private readonly terms: TermKeeper;
  private readonly commands = new CommandQueue();
  private readonly stepConfig: StepConfig;
  private readonly commandContext: CommandContext;
  /** Aborted by stop(): ends both loops and the fence. */
  private readonly lifetime = new AbortController();
  /** Aborted by interrupt(): cuts short the current pass's wait on the lock or its sleep. */
  private pass = new AbortController();
  private schedule: { nextCampaignMs: number; quiet: Quiet | undefined } = { nextCampaignMs: 0, quiet: undefined };
  private lastKind: StepKind | undefined;
  private syncReplicas = 0;
  private loops: Promise<void>[] = [];

  constructor(
    private readonly config: AgentConfig,
    target: DatabaseTarget,
    private readonly side: SideConnection,
    private readonly authority: DatabaseAuthority,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly coordination: Coordination = { connected: () => false, startupGraceMs: 0 },
  ) {
    super();
    this.sessions = new SessionKeeper(() =>
      LockSession.open({
        target,
        nodeId: config.nodeId,
        clusterId: config.clusterId,
        schema: config.schema,
        connectTimeoutMs: config.connectTimeoutMs,
        statementLockTimeoutMs: config.leaseMs,
        clock,
        authority,
        // Cancel only a wait still in progress: a cancel that arrives after the
        // lock was granted must not hit the next statement of a new leader.
        cancel: (pid) => cancelLockWait(side.db, pid),
      }),
    );
    this.observer = new LeaderObserver({
      db: side.db,
      schema: config.schema,
      clusterId: config.clusterId,
      nodeId: config.nodeId,
      clock,
      log,
      selfReady: () => this.readiness().ready,
      changed: () => {
        // A hold recorded while queued on the lock: leave the queue now, not at the slice's end.
        if (this.lastKind === "lock_wait" && this.observer.current.recordedHold) this.interrupt();
        this.changed();
      },
    });
    this.terms = new TermKeeper(
      {
        state: () => this.state,
        setState: (next) => {
          this.state = next;
        },
        changed: () => this.changed(),
        interrupt: () => this.interrupt(),
        ready: () => this.readiness().ready,
        sessions: this.sessions,
        observer: this.observer,
        clock,
        log,
        nodeId: config.nodeId,
        leaseMs: config.leaseMs,
        heartbeatIntervalMs: config.heartbeatIntervalMs,
      },
      this.lifetime.signal,
    );
    this.commandContext = {
      state: () => this.state,
      setState: (next) => this.setState(next),
      observer: this.observer,
      clock,
      log,
      resign: (session) => this.resign(session),
      becomeLeader: (session, floor, why) => this.terms.open(session, floor, why),
    };
    this.stepConfig = {
      leaseMs: config.leaseMs,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      campaignIntervalMs: config.campaignIntervalMs,
      nofailover: config.nofailover,
      successor: config.successor,
      lockWaitSliceMs: LOCK_WAIT_SLICE_MS,
    };
  }

  start(): void {
    // With a coordinator, give it the first word: it orders the best node to
    // campaign, or holds one that must not lead (after manual-reconcile).
    this.schedule.quiet = { untilMs: this.clock.monotonicMs() + this.coordination.startupGraceMs, why: "startup_grace" };
    const signal = this.lifetime.signal;
    // A new term is read the moment it commits, not at the next interval: the
    // highest epoch seen is what the first term after a lossy database
    // failover must open above. A leader has nothing to learn from it (its
    // heartbeat finds out if the term is no longer its own), and the notice
    // of its own new term comes while its first writes are starting.
    this.side.listen(TERM_CHANNEL, {
      notice: (payload) => {
        if (!termOf(this.state) && isTermNoticeFor(payload, this.config.schema, this.config.clusterId)) this.observer.readSoon();
      },
      listening: () => this.observer.readSoon(),
      failed: (err) => this.log.debug({ err: describeError(err) }, `LISTEN ${TERM_CHANNEL} failed; new terms are seen at the next read`),
    });
    this.loops = [
      this.electionLoop(signal),
      this.observer.run(signal, Math.min(this.config.probeIntervalMs, this.config.takeoverAfterMs / 4), () => this.takeOverIfHung()),
    ];
  }

  snapshot(): ElectionSnapshot {
    const term = termOf(this.state);
    const seen = this.observer.current;
    const session = this.sessions.current;
    return {
      role: roleOf(this.state, this.sessions.alive),
      term,
      // A claim of the lock is only as good as the lease: a leader that was
      // paused must not report the lock in the instant before its fence fires.
      sessionLockHeld: lockAuthority({ term, sessionAlive: this.sessions.alive, nowMs: this.clock.monotonicMs(), leaseMs: this.config.leaseMs }).ready,
      lockBackendPid: session?.alive ? session.pid : 0,
      observed: seen.view,
      lockHolder: seen.lockHolder,
      highestEpochSeen: seen.highestEpochSeen,
      held: this.state.kind === "held",
      databaseError: this.sessions.databaseError,
      lockConfirmedAt: this.terms.lockConfirmedAt,
      lockServer: session?.alive ? session.server : undefined,
    };
  }

  /** Write-Ready now, computed at call time so a lease that ran out is seen at once. */
  readiness(): Readiness {
    return writeReadiness({
      term: termOf(this.state),
      sessionAlive: this.sessions.alive,
      nowMs: this.clock.monotonicMs(),
      leaseMs: this.config.leaseMs,
      syncReplicas: this.syncReplicas,
      minSyncReplicas: this.config.minSyncReplicas,
    });
  }

  /** The replication probe tells us how many sync replicas the primary has. */
  setSyncReplicas(count: number): void {
    if (count === this.syncReplicas) return;
    this.syncReplicas = count;
    this.changed();
  }

  /** Runs a coordinator command in the election loop; resolves with its outcome. */
  execute(command: NodeCommand): Promise<CommandOutcome> {
    return new Promise((done) => {
      this.commands.push({ command, done });
      this.interrupt();
    });
  }

  /** Stops both loops; a leader resigns so a successor can take over at once. */
  async stop(): Promise<void> {
    if (this.lifetime.signal.aborted) return;
    this.lifetime.abort(new Error("agent stopping"));
    this.interrupt();
    await Promise.allSettled(this.loops);
    const term = termOf(this.state);
    const session = this.sessions.current;
    if (term && session?.alive) {
      this.state = follower;
      this.changed();
      await session.resign(term.epoch).then(
        () => this.log.info({ epoch: term.epoch }, `resigned epoch ${term.epoch} on shutdown`),
        (err: unknown) => this.log.warn({ epoch: term.epoch, err: describeError(err) }, "could not resign on shutdown; the lock ends with the session"),
      );
    }
    this.commands.failAll("agent is stopping");
    if (this.state.kind === "campaigning") this.state.standing.done(failed(this.state.standing.command, "agent is stopping"));
    await this.sessions.close();
  }

  /** Something the election depends on changed outside it (a server found superseded): decide again now. */
  reconsider(): void {
    this.interrupt();
  }

  private changed(): void {
    this.emit("change");
  }

  private setState(next: ElectionState): void {
    const before = this.state;
    this.state = next;
    if (before.kind !== next.kind) this.changed();
  }

  private interrupt(): void {
    this.pass.abort();
  }

  // ---- the loop: decide, log a changed decision, act ----------------------

  private async electionLoop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      this.pass = new AbortController();
      let waitMs: number;
      try {
        const step = this.decide();
        waitMs = "inMs" in step ? step.inMs : 0;
        if (waitMs <= 0) await this.perform(step, this.pass.signal);
      } catch (err) {
        waitMs = this.onStepError(err);
      }
      if (signal.aborted || this.commands.pending) continue;
      await this.clock.sleep(Math.max(0, waitMs), this.pass.signal).catch(() => undefined);
    }
  }

  private decide(): Step {
    const nowMs = this.clock.monotonicMs();
    // Epochs seen on any server (a zombie's included) count toward the next term's floor.
    const session = this.sessions.current;
    this.observer.noteEpoch(this.authority.highestEpochOf(session?.server?.reading.systemIdentifier));
    const step = nextStep(
      this.state,
      {
        sessionAlive: this.sessions.alive,
        commandPending: this.commands.pending,
        coordinatorConnected: this.coordination.connected(),
        quiet: this.schedule.quiet,
        nextHeartbeatMs: this.terms.nextHeartbeatMs,
        nextCampaignMs: this.schedule.nextCampaignMs,
        lockHolder: this.observer.current.lockHolder,
        superseded: session?.alive ? this.authority.lockServerRefusal(session.server) : undefined,
        recordedHold: this.observer.current.recordedHold,
      },
      this.stepConfig,
      nowMs,
    );
    if (step.kind !== this.lastKind) {
      this.lastKind = step.kind;
      this.log.info({ kind: step.kind, reason: step.reason }, `election: ${step.kind}: ${step.reason}`);
    }
    return step;
  }

  private async perform(step: Step, signal: AbortSignal): Promise<void> {
    switch (step.kind) {
      case "fence":
        return this.terms.fenceNow(step.reason);
      case "connect":
        return this.connect();
      case "leave_superseded":
        return this.leaveSuperseded(step.reason);
      case "run_command":
        return this.runNextCommand();
      case "heartbeat":
        return this.terms.heartbeat(this.liveSession());
      case "ordered_campaign":
        return serveOrderedCampaign(this.commandContext, this.liveSession(), step.waitMs, signal);
      case "ordered_campaign_expired":
        return expireOrderedCampaign(this.commandContext, step.reason);
      case "lock_wait": {
        const session = this.liveSession();
        if (await session.waitLock(step.waitMs, signal)) await this.terms.open(session, 0, this.config.successor ? "designated successor" : "first in the lock's queue");
        return;
      }
      case "campaign": {
        const session = this.liveSession();
        this.schedule.nextCampaignMs = this.clock.monotonicMs() + step.intervalMs;
        if (await session.tryLock()) await this.terms.open(session, 0, "lock was free");
        return;
      }
      case "held":
      case "nofailover":
      case "startup_grace":
      case "resign_backoff":
        return; // standing by only waits
    }
  }

  private liveSession(): LockSession {
    const session = this.sessions.current;
    if (!session) throw new Error("no lock session");
    return session;
  }

  private onStepError(err: unknown): number {
    const message = describeError(err);
    // Commands cannot run without a lock session: answer them now rather
    // than retrying them (and spinning) until the database is back.
    this.commands.answerWithoutSession(this.commandContext, `lock database unavailable: ${message}`);
    this.terms.drop(`lock session failed: ${message}`, true);
    const delay = this.sessions.failed(message);
    this.log.warn({ err: message, retryInMs: delay }, "lock database unavailable");
    this.changed();
    return delay;
  }

  private async connect(): Promise<void> {
    const session = await this.sessions.connect();
    this.log.info({ pid: session.pid }, "lock session connected");
    // Fenced describes the lost term; a fresh session starts as a follower.
    if (this.state.kind === "fenced") this.state = follower;
    this.changed();
  }

  /**
   * The lock session's server was superseded by a promoted one: resign any
   * term there (Write-Ready drops first), answer a standing campaign, fence the
   * server so its assert_epoch refuses every epoch, and drop the session. The
   * next connect refuses that server and settles on the authoritative one.
   */
  private async leaveSuperseded(reason: string): Promise<void> {
    const session = this.liveSession();
    const server = session.server;
    if (termOf(this.state)) {
      await this.terms.resign(session).catch((err: unknown) => this.log.warn({ err: describeError(err) }, "resigning on a superseded server failed; the term ends with the session"));
    }
    if (this.state.kind === "campaigning") {
      this.state.standing.done(failed(this.state.standing.command, `campaign refused: ${reason}`));
      this.state = follower;
    }
    const by = server && this.authority.authoritative(server.reading.systemIdentifier);
    if (by && session.alive && !server.reading.fenced) {
      await session.fenceSuperseded(by, reason).then(
        (fresh) => fresh && this.log.warn({ host: server.host }, `fenced ${server.host}: no term opens there and assert_epoch refuses every epoch`),
        (err: unknown) => this.log.warn({ host: server.host, err: describeError(err) }, "fencing the superseded server failed"),
      );
    }
    this.log.warn({ host: server?.host }, `left the lock database: ${reason}`);
    this.sessions.drop();
    this.changed();
  }

  /** Resigns, then stays out of the race briefly so the successor the coordinator chose wins. */
  private async resign(session: LockSession): Promise<Date> {
    const at = await this.terms.resign(session);
    this.schedule.quiet = { untilMs: this.clock.monotonicMs() + Math.max(1_000, 5 * this.config.campaignIntervalMs), why: "resign_backoff" };
    return at;
  }

  // ---- commands -----------------------------------------------------------

  private async runNextCommand(): Promise<void> {
    const queued = this.commands.next();
    if (!queued) return;
    const session = this.liveSession();
    // A campaign that waits on the lock is not done here: it becomes the
    // standing campaign that later passes serve, and it resolves from there.
    try {
      const result = await runCommand(this.commandContext, queued, session);
      if (result) queued.done(result);
    } catch (err) {
      queued.done(failed(queued.command, `${queued.command.action.kind} failed: ${describeError(err)}`));
      // Only a lock session that died ends the term; a side-connection error does not.
      if (!session.alive) throw err;
    }
  }

  // ---- hung-leader takeover -------------------------------------------------

  private async takeOverIfHung(): Promise<void> {
    const mayLead = this.state.kind !== "held" && this.state.kind !== "leader" && !this.config.nofailover;
    const ctx = { db: this.side.db, clusterId: this.config.clusterId, self: this.config.nodeId, takeoverAfterMs: this.config.takeoverAfterMs, log: this.log };
    if (!(await takeOverHungLeader(ctx, this.observer.current, this.clock.monotonicMs(), mayLead))) return;
    this.observer.forgetWatch();
    this.schedule.nextCampaignMs = 0;
    this.interrupt();
  }
}

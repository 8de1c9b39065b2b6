import { EventEmitter } from "node:events";
import type { Clock } from "../../core/clock.js";
import { describeError } from "../../core/errors.js";
import type { Logger } from "../../core/log.js";
import { noLeader, type CommandOutcome, type LeaderView, type NodeCommand, type NodeRole } from "../../core/model.js";
import type { DatabaseTarget } from "../../db/connect.js";
import { cancelLockWait, readLeadership, readLockHolders, terminateLockHolder } from "../../db/leadership.js";
import type { SideConnection } from "../../db/side-connection.js";
import type { AgentConfig } from "../config.js";
import { campaignFloorRefusal } from "./campaign-floor.js";
import { LockSession } from "./lock-session.js";
import { roleOf, selfCampaignIntervalMs, shouldTakeOver, watchHeartbeat, writeReadiness, type HeartbeatWatch, type Readiness, type Term } from "./readiness.js";

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
}

/** How the election defers to a coordinator while one is configured and reachable. */
export interface Coordination {
  readonly connected: () => boolean;
  /** No campaign of our own this long after start. */
  readonly startupGraceMs: number;
}

/** A campaign the coordinator ordered and that is still waiting on the lock. */
interface StandingCampaign {
  readonly command: NodeCommand;
  readonly untilMs: number;
  readonly floor: number;
  readonly done: (outcome: CommandOutcome) => void;
}

interface Queued {
  readonly command: NodeCommand;
  readonly done: (outcome: CommandOutcome) => void;
}

const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 2_000;
/** A successor's wait is re-armed in slices so it re-checks hold and shutdown. */
const SUCCESSOR_WAIT_SLICE_MS = 5_000;

/**
 * The election: one loop owns the lock session (campaign, heartbeat, resign,
 * commands), one loop watches leadership_state through a side connection
 * (observed leader, hung-leader takeover), and a timer fences the leader at
 * its lease deadline. Emits "change" whenever the snapshot may have changed.
 */
export class Elector extends EventEmitter<{ change: [] }> {
  private session: LockSession | undefined;
  private term: Term | undefined;
  private fenced = false;
  private held = false;
  private observed: LeaderView = noLeader;
  private lockHolder: string | undefined;
  private lockHolderPid: number | undefined;
  private highestEpochSeen = 0;
  private databaseError = "";
  private lockConfirmedAt: Date | undefined;
  private heartbeatWatch: HeartbeatWatch | undefined;
  private nextHeartbeatMs = 0;
  private nextCampaignMs = 0;
  private quietUntilMs = 0;
  private reconnectDelayMs = RECONNECT_MIN_MS;
  private fenceTimer: NodeJS.Timeout | undefined;
  private standing: StandingCampaign | undefined;
  private readonly queue: Queued[] = [];
  private stepAbort = new AbortController();
  private wake: (() => void) | undefined;
  private readonly stopped = new AbortController();
  private loops: Promise<void>[] = [];
  private syncReplicas = 0;

  constructor(
    private readonly config: AgentConfig,
    private readonly target: DatabaseTarget,
    private readonly side: SideConnection,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly coordination: Coordination = { connected: () => false, startupGraceMs: 0 },
  ) {
    super();
  }

  start(): void {
    // With a coordinator, give it the first word: it orders the best node to
    // campaign, or holds one that must not lead (after manual-reconcile).
    this.quietUntilMs = this.clock.monotonicMs() + this.coordination.startupGraceMs;
    this.loops = [this.electionLoop(), this.observeLoop()];
  }

  snapshot(): ElectionSnapshot {
    // A claim of the lock is only as good as the lease: a leader that was
    // paused must not report the lock in the instant before its fence fires.
    const sessionLockHeld =
      this.term !== undefined && this.session?.alive === true && this.clock.monotonicMs() - this.term.confirmedAtMs < this.config.leaseMs;
    return {
      role: roleOf({ term: this.term, sessionAlive: this.session?.alive === true, held: this.held, fenced: this.fenced }),
      term: this.term,
      sessionLockHeld,
      lockBackendPid: this.session?.alive ? this.session.pid : 0,
      observed: this.observed,
      lockHolder: this.lockHolder,
      highestEpochSeen: this.highestEpochSeen,
      held: this.held,
      databaseError: this.databaseError,
      lockConfirmedAt: this.lockConfirmedAt,
    };
  }

  /** Write-Ready now, computed at call time so a lease that ran out is seen at once. */
  readiness(): Readiness {
    return writeReadiness({
      term: this.term,
      sessionAlive: this.session?.alive === true,
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
    this.emit("change");
  }

  /** Runs a coordinator command in the election loop; resolves with its outcome. */
  execute(command: NodeCommand): Promise<CommandOutcome> {
    return new Promise((done) => {
      this.queue.push({ command, done });
      this.interrupt();
    });
  }

  /** Stops both loops; a leader resigns so a successor can take over at once. */
  async stop(): Promise<void> {
    if (this.stopped.signal.aborted) return;
    this.stopped.abort(new Error("agent stopping"));
    this.interrupt();
    await Promise.allSettled(this.loops);
    clearTimeout(this.fenceTimer);
    if (this.term && this.session?.alive) {
      const epoch = this.term.epoch;
      this.term = undefined;
      this.emit("change");
      await this.session.resign(epoch).then(
        () => this.log.info({ epoch }, `resigned epoch ${epoch} on shutdown`),
        (err: unknown) => this.log.warn({ epoch, err: describeError(err) }, "could not resign on shutdown; the lock ends with the session"),
      );
    }
    for (const q of this.queue.splice(0)) q.done(outcome(q.command, "failed", "agent is stopping"));
    this.standing?.done(outcome(this.standing.command, "failed", "agent is stopping"));
    await this.session?.close();
    this.session = undefined;
  }

  // ---- the election loop -------------------------------------------------

  private interrupt(): void {
    this.stepAbort.abort();
    this.wake?.();
  }

  private async electionLoop(): Promise<void> {
    while (!this.stopped.signal.aborted) {
      this.stepAbort = new AbortController();
      let delay: number;
      try {
        delay = await this.step(this.stepAbort.signal);
      } catch (err) {
        delay = this.onStepError(err);
      }
      if (this.stopped.signal.aborted || this.queue.length > 0) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(0, delay));
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  /** One pass; returns how long to wait before the next. */
  private async step(signal: AbortSignal): Promise<number> {
    if (!this.session?.alive) {
      if (this.term) this.loseTerm("lock session lost", true);
      await this.session?.close();
      this.session = undefined;
      this.session = await LockSession.open({
        target: this.target,
        nodeId: this.config.nodeId,
        clusterId: this.config.clusterId,
        schema: this.config.schema,
        connectTimeoutMs: this.config.connectTimeoutMs,
        statementLockTimeoutMs: this.config.leaseMs,
        // Cancel only a wait still in progress: a cancel that arrives after the
        // lock was granted must not hit the next statement of a new leader.
        cancel: (pid) => cancelLockWait(this.side.db, pid),
      });
      this.log.info({ pid: this.session.pid }, "lock session connected");
      // Fenced describes the lost term; a fresh session starts as a follower.
      this.fenced = false;
      this.reconnectDelayMs = RECONNECT_MIN_MS;
      this.setDatabaseError("");
      this.emit("change");
    }
    const session = this.session;

    const queued = this.queue.shift();
    if (queued) {
      // A campaign that waits on the lock is not done here: it becomes the
      // standing campaign that later steps serve, and it resolves from there.
      try {
        const outcome = await this.run(queued.command, session, queued.done);
        if (outcome) queued.done(outcome);
      } catch (err) {
        queued.done(failed(queued.command, `${queued.command.action.kind} failed: ${describeError(err)}`));
        // Only a lock session that died ends the term; a side-connection error does not.
        if (!session.alive) throw err;
      }
      return 0;
    }

    const now = this.clock.monotonicMs();
    if (this.term) {
      if (now < this.nextHeartbeatMs) return this.nextHeartbeatMs - now;
      await this.heartbeat(session, this.term).catch((err: unknown) => {
        if (!isQueryCanceled(err)) throw err;
        this.log.debug("heartbeat cancelled; retrying at the next beat");
      });
      this.nextHeartbeatMs = now + this.config.heartbeatIntervalMs;
      return this.config.heartbeatIntervalMs;
    }

    if (this.standing) return this.serveStanding(session, this.standing, signal);
    if (this.held || this.config.nofailover || now < this.quietUntilMs) {
      return Math.max(this.config.campaignIntervalMs, this.quietUntilMs - now);
    }
    if (this.config.successor) {
      if (await session.waitLock(SUCCESSOR_WAIT_SLICE_MS, signal)) await this.becomeLeader(session, this.highestEpochSeen, "designated successor");
      return 0;
    }
    if (now < this.nextCampaignMs) return this.nextCampaignMs - now;
    const interval = selfCampaignIntervalMs(this.config.campaignIntervalMs, this.coordination.connected());
    this.nextCampaignMs = now + interval;
    if (await session.tryLock()) await this.becomeLeader(session, this.highestEpochSeen, "lock was free");
    return interval;
  }

  private onStepError(err: unknown): number {
    const message = describeError(err);
    // Commands cannot run without a lock session: answer them now rather
    // than retrying them (and spinning) until the database is back.
    for (const q of this.queue.splice(0)) q.done(failed(q.command, `lock database unavailable: ${message}`));
    if (this.term) this.loseTerm(`lock session failed: ${message}`, true);
    this.setDatabaseError(message);
    void this.session?.close();
    this.session = undefined;
    this.log.warn({ err: message, retryInMs: this.reconnectDelayMs }, "lock database unavailable");
    const delay = this.reconnectDelayMs;
    this.reconnectDelayMs = Math.min(RECONNECT_MAX_MS, this.reconnectDelayMs * 2);
    this.emit("change");
    return delay;
  }

  private setDatabaseError(message: string): void {
    if (this.databaseError === message) return;
    this.databaseError = message;
    this.emit("change");
  }

  private async becomeLeader(session: LockSession, floor: number, why: string): Promise<Term> {
    const sent = this.clock.monotonicMs();
    let opened: Awaited<ReturnType<LockSession["openEpoch"]>>;
    try {
      opened = await session.openEpoch(Math.max(floor, this.highestEpochSeen));
    } catch (err) {
      // Holding the lock without a term would block everyone: give it back.
      await session.unlock().catch(() => session.close());
      throw err;
    }
    const term: Term = { epoch: opened.epoch, acquiredAt: opened.acquiredAt, confirmedAtMs: sent, heartbeatAt: opened.acquiredAt };
    this.term = term;
    this.fenced = false;
    this.held = false;
    this.noteEpoch(opened.epoch);
    this.lockConfirmedAt = this.clock.now();
    this.observed = { holderId: this.config.nodeId, epoch: opened.epoch, acquiredAt: opened.acquiredAt, writeReady: true, heartbeatAt: opened.acquiredAt };
    this.lockHolder = this.config.nodeId;
    this.nextHeartbeatMs = sent + this.config.heartbeatIntervalMs;
    this.armFence(term);
    this.log.info(
      { epoch: opened.epoch, superseded: opened.superseded, pid: session.pid },
      `acquired leadership: epoch ${opened.epoch} (${why})${opened.superseded.length ? `; closed unclosed epoch(s) ${opened.superseded.join(", ")} as superseded` : ""}`,
    );
    this.emit("change");
    return term;
  }

  private async heartbeat(session: LockSession, term: Term): Promise<void> {
    const sent = this.clock.monotonicMs();
    const result = await session.heartbeat(term.epoch);
    if (this.term !== term) return; // fenced or resigned meanwhile
    if (!result.lockHeld || !result.termCurrent) {
      const why = !result.lockHeld ? "the lock is no longer held by this session" : `leadership_state no longer names this node with epoch ${term.epoch}`;
      this.loseTerm(why, false);
      await session.unlock().catch(() => undefined);
      return;
    }
    const wasReady = this.readiness().ready;
    this.term = { ...term, confirmedAtMs: sent, heartbeatAt: result.heartbeatAt };
    this.lockConfirmedAt = this.clock.now();
    this.observed = { ...this.observed, heartbeatAt: result.heartbeatAt };
    this.armFence(this.term);
    if (this.readiness().ready !== wasReady) this.emit("change");
  }

  /** Drops the term: at once, before anyone else could be granted the lock. */
  private loseTerm(why: string, fenced: boolean): void {
    const term = this.term;
    if (!term) return;
    this.term = undefined;
    this.fenced = fenced;
    clearTimeout(this.fenceTimer);
    this.log.warn({ epoch: term.epoch, reason: why }, `dropped Write-Ready for epoch ${term.epoch}: ${why}`);
    this.emit("change");
  }

  private armFence(term: Term): void {
    clearTimeout(this.fenceTimer);
    const due = term.confirmedAtMs + this.config.leaseMs - this.clock.monotonicMs();
    this.fenceTimer = setTimeout(() => {
      if (this.term !== term) return;
      const age = Math.round(this.clock.monotonicMs() - term.confirmedAtMs);
      this.loseTerm(`lock session unconfirmed for ${age}ms (lease ${this.config.leaseMs}ms)`, true);
      // The session may be wedged; ending it lets Postgres free the lock.
      const session = this.session;
      this.session = undefined;
      void session?.close();
      this.interrupt();
    }, Math.max(0, due));
  }

  // ---- commands ----------------------------------------------------------

  private async run(command: NodeCommand, session: LockSession, done: (o: CommandOutcome) => void): Promise<CommandOutcome | undefined> {
    const observedEpoch = await this.refreshObserved();
    if (command.epoch !== observedEpoch) {
      return outcome(command, "refused", `epoch guard: command is for epoch ${command.epoch}, current epoch is ${observedEpoch}`, this.term?.epoch);
    }
    const action = command.action;
    this.log.info({ commandId: command.commandId, action: action.kind, epoch: command.epoch, reason: command.reason }, `command ${action.kind}`);
    switch (action.kind) {
      case "resign": {
        if (!this.term) return outcome(command, "refused", "not the leader", 0);
        const at = await this.resign(session, this.term);
        if (action.hold) this.setHeld(true);
        return { ...outcome(command, "done", `resigned epoch ${command.epoch}${action.hold ? "; holding" : ""}`, 0), resignedAt: at };
      }
      case "campaign": {
        const refusal = campaignFloorRefusal(action.epochFloor, Math.max(observedEpoch, this.term?.epoch ?? 0));
        if (refusal) return outcome(command, "refused", `campaign refused: ${refusal}`, this.term?.epoch ?? 0);
        this.setHeld(false);
        this.noteEpoch(action.epochFloor);
        if (this.term) return outcome(command, "done", `already leader for epoch ${this.term.epoch}`, this.term.epoch);
        this.cancelStanding("superseded by a newer campaign");
        if (action.waitMs <= 0) {
          if (await session.tryLock()) {
            const term = await this.becomeLeader(session, action.epochFloor, `ordered by command ${command.commandId}`);
            return outcome(command, "done", `acquired epoch ${term.epoch}`, term.epoch);
          }
          return outcome(command, "failed", `lock is held by ${this.lockHolder ?? "another session"}`, 0);
        }
        this.standing = { command, untilMs: this.clock.monotonicMs() + action.waitMs, floor: action.epochFloor, done };
        return undefined;
      }
      case "hold": {
        this.cancelStanding("superseded by hold");
        if (this.term) await this.resign(session, this.term);
        this.setHeld(true);
        return outcome(command, "done", "holding: not campaigning until released", 0);
      }
      case "release": {
        this.cancelStanding("superseded by release");
        this.setHeld(false);
        return outcome(command, "done", "released: campaigning normally", this.term?.epoch ?? 0);
      }
    }
  }

  private async serveStanding(session: LockSession, standing: StandingCampaign, signal: AbortSignal): Promise<number> {
    const left = standing.untilMs - this.clock.monotonicMs();
    if (left <= 0) {
      this.standing = undefined;
      standing.done(outcome(standing.command, "failed", `lock still held by ${this.lockHolder ?? "another session"} when the wait ended`, 0));
      return 0;
    }
    if (!(await session.waitLock(left, signal))) return 0;
    this.standing = undefined;
    const term = await this.becomeLeader(session, standing.floor, `ordered by command ${standing.command.commandId}`);
    standing.done(outcome(standing.command, "done", `acquired epoch ${term.epoch}`, term.epoch));
    return 0;
  }

  private cancelStanding(why: string): void {
    const standing = this.standing;
    if (!standing) return;
    this.standing = undefined;
    standing.done(outcome(standing.command, "failed", why, 0));
  }

  private async resign(session: LockSession, term: Term): Promise<Date> {
    // Stop claiming write authority before the lock can pass to anyone else.
    this.term = undefined;
    this.fenced = false;
    clearTimeout(this.fenceTimer);
    this.emit("change");
    let at: Date;
    try {
      at = await session.resign(term.epoch);
    } catch (err) {
      // The term is gone either way; ending the session frees the lock.
      this.session = undefined;
      void session.close();
      throw err;
    }
    // Stay out of the race briefly so the successor the coordinator chose wins.
    this.quietUntilMs = this.clock.monotonicMs() + Math.max(1_000, 5 * this.config.campaignIntervalMs);
    this.observed = { ...this.observed, holderId: "", writeReady: false };
    this.log.info({ epoch: term.epoch }, `resigned epoch ${term.epoch}`);
    this.emit("change");
    return at;
  }

  private setHeld(held: boolean): void {
    if (this.held === held) return;
    this.held = held;
    this.emit("change");
  }

  private noteEpoch(epoch: number): void {
    if (epoch > this.highestEpochSeen) this.highestEpochSeen = epoch;
  }

  // ---- observation -------------------------------------------------------

  /** Reads leadership_state and the lock holder; returns the current epoch. */
  private async refreshObserved(): Promise<number> {
    const row = await readLeadership(this.side.db, this.config.schema, this.config.clusterId);
    const holders = await readLockHolders(this.side.db, this.config.clusterId);
    const holder = holders[0];
    const observed: LeaderView = {
      holderId: row.holderId ?? "",
      epoch: row.epoch,
      acquiredAt: row.acquiredAt,
      writeReady: row.holderId === this.config.nodeId ? this.readiness().ready : row.holderId !== undefined && holder?.applicationName === row.holderId,
      heartbeatAt: row.heartbeatAt,
    };
    const changed =
      observed.holderId !== this.observed.holderId || observed.epoch !== this.observed.epoch || holder?.applicationName !== this.lockHolder;
    this.observed = observed;
    this.lockHolder = holder?.applicationName;
    this.lockHolderPid = holder?.pid;
    this.noteEpoch(row.epoch);
    this.heartbeatWatch = watchHeartbeat(
      this.heartbeatWatch,
      `${holder?.pid ?? "-"}|${row.holderId ?? "-"}|${row.epoch}|${row.heartbeatAt?.getTime() ?? "-"}`,
      this.clock.monotonicMs(),
    );
    if (changed) this.emit("change");
    return row.epoch;
  }

  private async observeLoop(): Promise<void> {
    const signal = this.stopped.signal;
    while (!signal.aborted) {
      try {
        await this.refreshObserved();
        await this.maybeTakeOver();
      } catch (err) {
        this.log.debug({ err: describeError(err) }, "observation failed");
      }
      await this.clock.sleep(Math.min(this.config.probeIntervalMs, this.config.takeoverAfterMs / 4), signal).catch(() => undefined);
    }
  }

  private async maybeTakeOver(): Promise<void> {
    const take = shouldTakeOver({
      watch: this.heartbeatWatch,
      nowMs: this.clock.monotonicMs(),
      takeoverAfterMs: this.config.takeoverAfterMs,
      lockHolder: this.lockHolder,
      self: this.config.nodeId,
      mayLead: !this.held && !this.config.nofailover && this.term === undefined,
    });
    if (!take || this.lockHolderPid === undefined) return;
    const frozenFor = Math.round(this.clock.monotonicMs() - this.heartbeatWatch!.sinceMs);
    this.log.warn(
      { holder: this.lockHolder, pid: this.lockHolderPid, frozenForMs: frozenFor },
      `leader ${this.lockHolder} has not heartbeated for ${frozenFor}ms (takeover after ${this.config.takeoverAfterMs}ms); ending its lock session`,
    );
    // The statement re-checks that this pid still holds our lock.
    if (this.lockHolder) await terminateLockHolder(this.side.db, this.config.clusterId, this.lockHolder, this.lockHolderPid);
    this.heartbeatWatch = undefined;
    this.nextCampaignMs = 0;
    this.interrupt();
  }
}

function outcome(command: NodeCommand, result: CommandOutcome["result"], message: string, epoch = 0): CommandOutcome {
  return { commandId: command.commandId, result, message, epoch, resignedAt: undefined };
}

function failed(command: NodeCommand, message: string): CommandOutcome {
  return outcome(command, "failed", message);
}

/** SQLSTATE 57014: a statement cancelled by pg_cancel_backend. */
function isQueryCanceled(err: unknown): boolean {
  return (err as { cause?: { code?: string } } | undefined)?.cause?.code === "57014";
}

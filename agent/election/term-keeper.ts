import type { Clock } from "../../core/clock.js";
import type { Logger } from "../../core/log.js";
import { follower, termOf, type ElectionState } from "./election-state.js";
import type { LeaderObserver } from "./leader-observer.js";
import { LeaseFence } from "./lease-fence.js";
import type { LockSession } from "./lock-session.js";
import type { Term } from "./readiness.js";
import type { SessionKeeper } from "./session-keeper.js";

/** What the term's transitions may touch; the elector provides it. */
export interface TermContext {
  state(): ElectionState;
  /** Sets the state without telling anyone: the term emits "change" once everything it reports is in place. */
  setState(next: ElectionState): void;
  /** Tells the agent the snapshot changed. */
  changed(): void;
  /** Cuts short whatever the election loop is waiting on. */
  interrupt(): void;
  /** Write-Ready, judged now. */
  ready(): boolean;
  readonly sessions: SessionKeeper;
  readonly observer: LeaderObserver;
  readonly clock: Clock;
  readonly log: Logger;
  readonly nodeId: string;
  readonly leaseMs: number;
  readonly heartbeatIntervalMs: number;
}

/**
 * The term and its fence: opening a term on the lock, confirming it by
 * heartbeat, and ending it by resigning (Write-Ready first, then the lock)
 * or by dropping it at once when the lease runs out or the session fails.
 */
export class TermKeeper {
  private readonly fence: LeaseFence;
  /** Monotonic time the next heartbeat is due. */
  nextHeartbeatMs = 0;
  /** Wall-clock time of the last confirmation of our lock, for reports. */
  lockConfirmedAt: Date | undefined;

  constructor(
    private readonly ctx: TermContext,
    signal: AbortSignal,
  ) {
    this.fence = new LeaseFence(ctx.clock, ctx.leaseMs, signal, (term) => {
      if (termOf(ctx.state()) !== term) return;
      const age = Math.round(ctx.clock.monotonicMs() - term.confirmedAtMs);
      this.fenceNow(`lock session unconfirmed for ${age}ms (lease ${ctx.leaseMs}ms)`);
    });
  }

  /** Opens the next epoch on a session that was just granted the lock. */
  async open(session: LockSession, floor: number, why: string): Promise<Term> {
    const { ctx } = this;
    const sent = ctx.clock.monotonicMs();
    let opened: Awaited<ReturnType<LockSession["openEpoch"]>>;
    try {
      opened = await session.openEpoch(Math.max(floor, ctx.observer.current.highestEpochSeen));
    } catch (err) {
      // Holding the lock without a term would block everyone: give it back.
      await session.unlock().catch(() => session.close());
      throw err;
    }
    const term: Term = { epoch: opened.epoch, acquiredAt: opened.acquiredAt, confirmedAtMs: sent, heartbeatAt: opened.acquiredAt };
    ctx.setState({ kind: "leader", term });
    this.lockConfirmedAt = ctx.clock.now();
    ctx.observer.sawOwnTerm({ holderId: ctx.nodeId, epoch: opened.epoch, acquiredAt: opened.acquiredAt, writeReady: true, heartbeatAt: opened.acquiredAt });
    this.nextHeartbeatMs = sent + ctx.heartbeatIntervalMs;
    this.fence.arm(term);
    ctx.log.info(
      { epoch: opened.epoch, superseded: opened.superseded, pid: session.pid },
      `acquired leadership: epoch ${opened.epoch} (${why})${opened.superseded.length ? `; closed unclosed epoch(s) ${opened.superseded.join(", ")} as superseded` : ""}`,
    );
    ctx.changed();
    return term;
  }

  /** Confirms the lock and the term in one statement; the lease runs from when it was sent. */
  async heartbeat(session: LockSession): Promise<void> {
    const { ctx } = this;
    const term = termOf(ctx.state());
    if (!term) return;
    const sent = ctx.clock.monotonicMs();
    this.nextHeartbeatMs = sent + ctx.heartbeatIntervalMs;
    let result: Awaited<ReturnType<LockSession["heartbeat"]>>;
    try {
      result = await session.heartbeat(term.epoch);
    } catch (err) {
      if (!isQueryCanceled(err)) throw err;
      ctx.log.debug("heartbeat cancelled; retrying at the next beat");
      return;
    }
    if (termOf(ctx.state()) !== term) return; // fenced or resigned meanwhile
    if (!result.lockHeld || !result.termCurrent) {
      const why = !result.lockHeld ? "the lock is no longer held by this session" : `leadership_state no longer names this node with epoch ${term.epoch}`;
      this.drop(why, false);
      await session.unlock().catch(() => undefined);
      return;
    }
    const wasReady = ctx.ready();
    const renewed: Term = { ...term, confirmedAtMs: sent, heartbeatAt: result.heartbeatAt };
    ctx.setState({ kind: "leader", term: renewed });
    this.lockConfirmedAt = ctx.clock.now();
    ctx.observer.sawOwnHeartbeat(result.heartbeatAt);
    this.fence.arm(renewed);
    if (ctx.ready() !== wasReady) ctx.changed();
  }

  /** Drops the term: at once, before anyone else could be granted the lock. */
  drop(why: string, fenced: boolean): void {
    const { ctx } = this;
    const term = termOf(ctx.state());
    if (!term) return;
    ctx.setState(fenced ? { kind: "fenced", epoch: term.epoch } : follower);
    this.fence.disarm();
    ctx.log.warn({ epoch: term.epoch, reason: why }, `dropped Write-Ready for epoch ${term.epoch}: ${why}`);
    ctx.changed();
  }

  /** The lease ran out (or the session died): drop the term and end the session, which may be wedged. */
  fenceNow(why: string): void {
    this.drop(why, true);
    this.ctx.sessions.drop();
    this.ctx.interrupt();
  }

  /** Resigns: Write-Ready is dropped before the epoch is closed and the lock released. */
  async resign(session: LockSession): Promise<Date> {
    const { ctx } = this;
    const term = termOf(ctx.state());
    if (!term) throw new Error("not the leader");
    // Stop claiming write authority before the lock can pass to anyone else.
    ctx.setState(follower);
    this.fence.disarm();
    ctx.changed();
    let at: Date;
    try {
      at = await session.resign(term.epoch);
    } catch (err) {
      // The term is gone either way; ending the session frees the lock.
      if (ctx.sessions.current === session) ctx.sessions.drop();
      else void session.close();
      throw err;
    }
    ctx.observer.sawOwnResign();
    ctx.log.info({ epoch: term.epoch }, `resigned epoch ${term.epoch}`);
    ctx.changed();
    return at;
  }
}

/** SQLSTATE 57014: a statement cancelled by pg_cancel_backend. */
function isQueryCanceled(err: unknown): boolean {
  return (err as { cause?: { code?: string } } | undefined)?.cause?.code === "57014";
}

import type { Clock } from "../../core/clock.js";
import { describeError } from "../../core/errors.js";
import type { Logger } from "../../core/log.js";
import type { CommandOutcome, NodeCommand } from "../../core/model.js";
import { follower, held, termOf, type ElectionState } from "./election-state.js";
import type { LeaderObserver } from "./leader-observer.js";
import type { LockSession } from "./lock-session.js";
import { decideCommand } from "./next-step.js";
import type { Term } from "./readiness.js";

/** A coordinator command waiting for the election loop, and how to answer it. */
export interface QueuedCommand {
  readonly command: NodeCommand;
  readonly done: (outcome: CommandOutcome) => void;
}

/** Commands run one at a time, in order, in the election loop. */
export class CommandQueue {
  private readonly items: QueuedCommand[] = [];

  push(item: QueuedCommand): void {
    this.items.push(item);
  }

  next(): QueuedCommand | undefined {
    return this.items.shift();
  }

  get pending(): boolean {
    return this.items.length > 0;
  }

  /** Answers every queued command as failed, e.g. when no lock session can run them. */
  failAll(message: string): void {
    for (const q of this.items.splice(0)) q.done(failed(q.command, message));
  }

  /**
   * Without a lock session a node holds no term, so a hold or a release needs
   * none: they are answered by changing the state alone (holding is always
   * safe). Everything else fails with `message`.
   */
  answerWithoutSession(ctx: Pick<CommandContext, "state" | "setState" | "log">, message: string): void {
    for (const { command, done } of this.items.splice(0)) {
      const kind = command.action.kind;
      if (kind === "hold" && !termOf(ctx.state())) {
        cancelOrderedCampaign(ctx, "superseded by hold");
        ctx.setState(held);
        ctx.log.info({ commandId: command.commandId }, "command hold: holding (no lock session)");
        done(outcome(command, "done", "holding: not campaigning until released (no lock session now)", 0));
      } else if (kind === "release") {
        cancelOrderedCampaign(ctx, "superseded by release");
        if (ctx.state().kind === "held") ctx.setState(follower);
        done(outcome(command, "done", "released: campaigning normally once the lock database is reachable", 0));
      } else {
        done(failed(command, message));
      }
    }
  }
}

export function outcome(command: NodeCommand, result: CommandOutcome["result"], message: string, epoch = 0): CommandOutcome {
  return { commandId: command.commandId, result, message, epoch, resignedAt: undefined };
}

export function failed(command: NodeCommand, message: string): CommandOutcome {
  return outcome(command, "failed", message);
}

/** What running a command may do to the election; the elector provides it. */
export interface CommandContext {
  state(): ElectionState;
  setState(next: ElectionState): void;
  readonly observer: LeaderObserver;
  readonly clock: Clock;
  readonly log: Logger;
  /** Drops Write-Ready, then closes the epoch and unlocks. */
  resign(session: LockSession): Promise<Date>;
  becomeLeader(session: LockSession, floor: number, why: string): Promise<Term>;
}

/**
 * Runs one command on the lock session. The epoch guard is checked against
 * leadership_state read just now. A campaign that waits on the lock is not
 * answered here: it becomes the ordered campaign the loop serves, and
 * resolves from there (undefined).
 */
export async function runCommand(ctx: CommandContext, { command, done }: QueuedCommand, session: LockSession): Promise<CommandOutcome | undefined> {
  const observedEpoch = await ctx.observer.refresh();
  const plan = decideCommand(command, observedEpoch, ctx.state());
  ctx.log.info(
    { commandId: command.commandId, action: command.action.kind, epoch: command.epoch, reason: command.reason, plan: plan.kind },
    `command ${command.action.kind}: ${plan.kind}`,
  );
  switch (plan.kind) {
    case "refuse":
      return outcome(command, "refused", plan.message, plan.epoch);
    case "resign": {
      const at = await ctx.resign(session);
      if (plan.hold) ctx.setState(held);
      return { ...outcome(command, "done", `resigned epoch ${command.epoch}${plan.hold ? "; holding" : ""}`, 0), resignedAt: at };
    }
    case "already_leader":
      ctx.observer.noteEpoch(plan.floor);
      return outcome(command, "done", `already leader for epoch ${plan.epoch}`, plan.epoch);
    case "campaign_now": {
      enterCampaign(ctx, plan.floor);
      if (await session.tryLock()) {
        const term = await ctx.becomeLeader(session, plan.floor, `ordered by command ${command.commandId}`);
        return outcome(command, "done", `acquired epoch ${term.epoch}`, term.epoch);
      }
      return outcome(command, "failed", `lock is held by ${ctx.observer.current.lockHolder ?? "another session"}`, 0);
    }
    case "campaign_wait":
      enterCampaign(ctx, plan.floor);
      ctx.setState({ kind: "campaigning", standing: { command, untilMs: ctx.clock.monotonicMs() + plan.waitMs, floor: plan.floor, done } });
      return undefined;
    case "hold":
      cancelOrderedCampaign(ctx, "superseded by hold");
      if (plan.resign) await ctx.resign(session);
      ctx.setState(held);
      return outcome(command, "done", "holding: not campaigning until released", 0);
    case "release":
      cancelOrderedCampaign(ctx, "superseded by release");
      if (ctx.state().kind === "held") ctx.setState(follower);
      return outcome(command, "done", "released: campaigning normally", termOf(ctx.state())?.epoch ?? 0);
  }
}

/** A campaign order releases a hold, raises the epoch floor and replaces any earlier order. */
function enterCampaign(ctx: CommandContext, floor: number): void {
  if (ctx.state().kind === "held") ctx.setState(follower);
  ctx.observer.noteEpoch(floor);
  cancelOrderedCampaign(ctx, "superseded by a newer campaign");
}

function cancelOrderedCampaign(ctx: Pick<CommandContext, "state" | "setState">, why: string): void {
  const state = ctx.state();
  if (state.kind !== "campaigning") return;
  ctx.setState(follower);
  state.standing.done(outcome(state.standing.command, "failed", why, 0));
}

/** The ordered campaign's wait ran out without the lock. */
export function expireOrderedCampaign(ctx: CommandContext, why: string): void {
  cancelOrderedCampaign(ctx, why);
}

/** Waits on the lock for the ordered campaign; on the lock, opens the term and answers the order. */
export async function serveOrderedCampaign(ctx: CommandContext, session: LockSession, waitMs: number, signal: AbortSignal): Promise<void> {
  const state = ctx.state();
  if (state.kind !== "campaigning") return;
  const { standing } = state;
  if (!(await session.waitLock(waitMs, signal))) return;
  // Commands run in the election loop, so the order cannot have changed
  // during the wait; opening the term ends it (the state becomes leader).
  try {
    const term = await ctx.becomeLeader(session, standing.floor, `ordered by command ${standing.command.commandId}`);
    standing.done(outcome(standing.command, "done", `acquired epoch ${term.epoch}`, term.epoch));
  } catch (err) {
    ctx.setState(follower);
    standing.done(failed(standing.command, `campaign failed: ${describeError(err)}`));
    throw err;
  }
}

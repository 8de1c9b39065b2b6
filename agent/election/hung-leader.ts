import type { Logger } from "../../core/log.js";
import { terminateLockHolder } from "../../db/leadership.js";
import type { Queryable } from "../../db/side-connection.js";
import type { HeartbeatWatch, Observation } from "./leader-observer.js";

export interface TakeoverInput {
  readonly watch: HeartbeatWatch | undefined;
  readonly nowMs: number;
  readonly takeoverAfterMs: number;
  readonly lockHolder: string | undefined;
  readonly self: string;
  /** Neither held, nor --nofailover, nor leading already. */
  readonly mayLead: boolean;
}

/**
 * Whether a follower should end a hung leader's session: someone holds the
 * lock, it is not us, and leadership_state's heartbeat has not moved for
 * longer than takeoverAfterMs by our own clock. A leader that is merely slow
 * keeps heartbeating through its own session and is never taken over.
 */
export function shouldTakeOver(input: TakeoverInput): boolean {
  if (!input.mayLead || !input.watch || input.lockHolder === undefined || input.lockHolder === input.self) return false;
  return input.nowMs - input.watch.sinceMs > input.takeoverAfterMs;
}

export interface TakeoverContext {
  readonly db: Queryable;
  readonly clusterId: string;
  readonly self: string;
  readonly takeoverAfterMs: number;
  readonly log: Logger;
}

/**
 * Ends the lock session of a leader whose heartbeat froze past the takeover
 * delay. The statement re-checks that this pid still holds our lock, so a
 * leader that changed meanwhile is never hit. Returns whether it acted.
 */
export async function takeOverHungLeader(ctx: TakeoverContext, seen: Observation, nowMs: number, mayLead: boolean): Promise<boolean> {
  const take = shouldTakeOver({ watch: seen.watch, nowMs, takeoverAfterMs: ctx.takeoverAfterMs, lockHolder: seen.lockHolder, self: ctx.self, mayLead });
  if (!take || seen.lockHolderPid === undefined || seen.lockHolder === undefined) return false;
  const frozenFor = Math.round(nowMs - seen.watch!.sinceMs);
  ctx.log.warn(
    { holder: seen.lockHolder, pid: seen.lockHolderPid, frozenForMs: frozenFor },
    `leader ${seen.lockHolder} has not heartbeated for ${frozenFor}ms (takeover after ${ctx.takeoverAfterMs}ms); ending its lock session`,
  );
  await terminateLockHolder(ctx.db, ctx.clusterId, seen.lockHolder, seen.lockHolderPid);
  return true;
}

import { Code, ConnectError } from "@connectrpc/connect";
import { systemClock, type Clock } from "../core/clock.js";

/*
 * Following a server stream across breaks (a coordinator restarted, a
 * network blip): when an established stream fails or ends, wait with
 * exponential backoff and jitter, open it again, and carry on. The leader
 * stream has no resume point (WatchLeaderRequest carries no revision, and
 * each server numbers its events afresh), so a resumed stream starts with a
 * fresh snapshot: `autonomy ha watch` says that events in between may have
 * been missed, and followLeader (follow-leader.ts) resumes on its side by
 * epoch, dropping what it already gave and filling gaps from the history.
 */

export interface Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
}

export const DEFAULT_BACKOFF: Backoff = { initialMs: 250, maxMs: 5_000 };

/**
 * The wait before reconnect attempt `attempt` (0-based): doubling from
 * initialMs up to maxMs, of which a random half is jitter, so clients cut off
 * together do not all come back in the same instant.
 */
export function backoffDelay(attempt: number, backoff: Backoff = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const ceiling = Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** Failures that another attempt will not fix: a wrong URL, missing rights, a bad request. */
export function isPermanent(err: unknown): boolean {
  if (!(err instanceof ConnectError)) return false;
  return [Code.Unauthenticated, Code.PermissionDenied, Code.Unimplemented, Code.InvalidArgument, Code.NotFound].includes(err.code);
}

/** The server ended the very first stream without sending anything. */
export class StreamClosedError extends Error {
  override readonly name = "StreamClosedError";
  constructor() {
    super("the server closed the stream before sending anything");
  }
}

export interface FollowOptions<T> {
  /** Opens the stream once; called again for every reconnect (`opened`: how many times before, so callers can rotate URLs). */
  open(signal: AbortSignal, opened: number): AsyncIterable<T>;
  onEvent(event: T, info: { readonly resumed: boolean }): void;
  /** The stream broke at `at`; `reason` is one line. */
  onLost?(reason: string, at: Date): void;
  /** The stream is back, just before its first event is delivered. */
  onResumed?(info: { readonly at: Date; readonly attempts: number; readonly downMs: number }): void;
  readonly signal: AbortSignal;
  /** Retry even when the very first connection fails (default: that failure is thrown, so a wrong URL fails fast). */
  readonly retryFirst?: boolean;
  readonly backoff?: Backoff;
  readonly clock?: Clock;
  readonly random?: () => number;
}

/**
 * Follows the stream until the signal aborts (then resolves), or until a
 * permanent failure, or a failure before the first event unless retryFirst
 * (then rejects with that error).
 */
export async function followStream<T>(options: FollowOptions<T>): Promise<void> {
  const clock = options.clock ?? systemClock;
  const { signal } = options;
  let established = false;
  let lostAt: Date | undefined;
  let lostMono = 0;
  let attempts = 0;
  let opened = 0;
  while (!signal.aborted) {
    let reason: string;
    try {
      let first = true;
      for await (const event of options.open(signal, opened++)) {
        if (first && lostAt) options.onResumed?.({ at: clock.now(), attempts, downMs: Math.round(clock.monotonicMs() - lostMono) });
        const resumed = first && lostAt !== undefined;
        if (first) {
          first = false;
          established = true;
          lostAt = undefined;
          attempts = 0;
        }
        options.onEvent(event, { resumed });
      }
      if (signal.aborted) return;
      if (!established && !options.retryFirst) throw new StreamClosedError();
      reason = "the server closed the stream";
    } catch (err) {
      if (signal.aborted) return;
      if (isPermanent(err) || (!established && !options.retryFirst)) throw err;
      reason = err instanceof ConnectError ? err.rawMessage : err instanceof Error ? err.message : String(err);
    }
    if (!lostAt) {
      lostAt = clock.now();
      lostMono = clock.monotonicMs();
      options.onLost?.(reason.replace(/\s+/g, " ").trim(), lostAt);
    }
    try {
      await clock.sleep(backoffDelay(attempts, options.backoff, options.random), signal);
    } catch {
      return; // aborted while waiting
    }
    attempts++;
  }
}

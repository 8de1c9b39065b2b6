/**
 * Time as domain code sees it. Decisions take `now` from a Clock so tests can
 * drive them with a manual clock; monotonic time is used for durations so a
 * wall-clock step never shortens or stretches a lease.
 */
export interface Clock {
  /** Wall-clock time, for timestamps people read. */
  now(): Date;
  /** Monotonic milliseconds, for measuring durations. */
  monotonicMs(): number;
  /** Resolves after `ms`, or rejects with the signal's reason when aborted. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => new Date(),
  monotonicMs: () => performance.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const timer = setTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal?.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
    }),
};

/** A clock that only moves when told to; for unit tests of pure logic. */
export class ManualClock implements Clock {
  private wallMs: number;
  private mono = 0;
  private waiters: { at: number; resolve: () => void }[] = [];

  constructor(start: Date = new Date("2026-03-18T10:00:00Z")) {
    this.wallMs = start.getTime();
  }

  now(): Date {
    return new Date(this.wallMs);
  }

  monotonicMs(): number {
    return this.mono;
  }

  advance(ms: number): void {
    this.wallMs += ms;
    this.mono += ms;
    const due = this.waiters.filter((w) => w.at <= this.mono);
    this.waiters = this.waiters.filter((w) => w.at > this.mono);
    for (const w of due) w.resolve();
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      this.waiters.push({ at: this.mono + ms, resolve });
      signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
    });
  }
}

/** Polls `check` until it returns a truthy value or the deadline passes. */
export async function waitFor<T>(
  check: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  options: { timeoutMs: number; intervalMs?: number; what?: string; signal?: AbortSignal },
): Promise<T> {
  const deadline = performance.now() + options.timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      lastError = err;
    }
    if (performance.now() > deadline) {
      const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : "";
      throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${options.what ?? "condition"}${why}`);
    }
    await systemClock.sleep(options.intervalMs ?? 25, options.signal);
  }
}

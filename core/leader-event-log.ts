import type { LeaderView } from "./model.js";

export type LeaderEventKind = "snapshot" | "leader_changed" | "write_ready_changed" | "leader_lost" | "split_brain_detected" | "split_brain_resolved";

export interface LeaderEvent {
  readonly revision: number;
  readonly kind: LeaderEventKind;
  readonly leader: LeaderView;
  readonly at: Date;
  readonly message: string;
}

/**
 * The leader stream's one in-memory log: every change gets the next revision,
 * and each watcher reads the log at its own pace from a cursor, so a thousand
 * watchers cost one copy of each event and a slow one never holds up the
 * others. A watcher that falls further behind than the log keeps gets a fresh
 * snapshot (a revision gap tells it so).
 */
export class LeaderEventLog {
  private readonly events: LeaderEvent[] = [];
  private revision = 0;
  private current: LeaderView;
  private wakers = new Set<() => void>();
  private readonly listeners = new Set<(e: LeaderEvent) => void>();

  constructor(
    initial: LeaderView,
    private readonly now: () => Date,
    private readonly capacity = 4096,
  ) {
    this.current = initial;
  }

  get leader(): LeaderView {
    return this.current;
  }

  get lastRevision(): number {
    return this.revision;
  }

  publish(kind: Exclude<LeaderEventKind, "snapshot">, leader: LeaderView, message: string): LeaderEvent {
    this.current = leader;
    const event: LeaderEvent = { revision: ++this.revision, kind, leader, at: this.now(), message };
    this.events.push(event);
    if (this.events.length > this.capacity) this.events.splice(0, this.events.length - this.capacity);
    const wake = this.wakers;
    this.wakers = new Set();
    for (const w of wake) w();
    for (const l of this.listeners) l(event);
    return event;
  }

  /**
   * Calls `listener` synchronously with every event published from now on,
   * until the returned function is called: for a fan-out that keeps its own
   * cursors (rpc/leader-fanout.ts) rather than one generator per watcher.
   */
  onPublish(listener: (e: LeaderEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * What a watcher whose last event was `revision` reads next: the following
   * event, or a fresh snapshot when that event has already left the log.
   * Undefined when it is up to date.
   */
  next(revision: number): LeaderEvent | undefined {
    if (revision >= this.revision) return undefined;
    const oldest = this.events[0]?.revision ?? this.revision + 1;
    return revision + 1 < oldest ? this.snapshot() : this.events[revision + 1 - oldest];
  }

  /**
   * The current state, then every event after it, until `signal` aborts.
   * `as` converts each event on the way out (one async hop per message, not two).
   */
  watch(signal: AbortSignal): AsyncGenerator<LeaderEvent>;
  watch<T>(signal: AbortSignal, as: (e: LeaderEvent) => T): AsyncGenerator<T>;
  async *watch<T>(signal: AbortSignal, as: (e: LeaderEvent) => T = (e) => e as unknown as T): AsyncGenerator<T> {
    let cursor = this.revision;
    yield as(this.snapshot());
    let wake: (() => void) | undefined;
    const onAbort = () => wake?.();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      while (!signal.aborted) {
        const next = this.next(cursor);
        if (next) {
          cursor = next.revision;
          yield as(next);
          continue;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
          this.wakers.add(resolve);
        });
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      if (wake) this.wakers.delete(wake);
    }
  }

  snapshot(): LeaderEvent {
    return { revision: this.revision, kind: "snapshot", leader: this.current, at: this.now(), message: "current leader" };
  }
}

/**
 * What changed between two leader views, as a leader-stream event: a new
 * holder or epoch, the loss of the leader, or the holder's Write-Ready
 * flipping. Undefined when nothing a watcher cares about changed.
 */
export function leaderChange(
  prev: LeaderView,
  next: LeaderView,
): { kind: "leader_changed" | "leader_lost" | "write_ready_changed"; message: string } | undefined {
  if (prev.holderId === next.holderId && prev.epoch === next.epoch) {
    if (prev.writeReady === next.writeReady) return undefined;
    return { kind: "write_ready_changed", message: `${next.holderId} Write-Ready ${next.writeReady}` };
  }
  if (next.holderId === "") {
    // Epoch bookkeeping only when nobody led before either.
    if (prev.holderId === "") return undefined;
    return { kind: "leader_lost", message: `${prev.holderId} no longer holds write authority (epoch ${prev.epoch})` };
  }
  return {
    kind: "leader_changed",
    message: `${next.holderId} holds epoch ${next.epoch}${prev.holderId ? ` (was ${prev.holderId}, epoch ${prev.epoch})` : ""}`,
  };
}

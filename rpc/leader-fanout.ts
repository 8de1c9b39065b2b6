import type { LeaderEvent, LeaderEventLog } from "../core/leader-event-log.js";
import type { StreamSink } from "./direct-stream.js";
import type { Encoded } from "./service-adapter.js";

interface Watcher {
  readonly sink: StreamSink;
  /** Revision of the last event written to this watcher. */
  cursor: number;
  /** Its call's buffer is full: nothing more until it drains. */
  blocked: boolean;
  closed: boolean;
}

/**
 * Watchers written per slice of a pass. Between slices the event loop turns,
 * so HTTP/2 sends what the slice wrote (node:http2 flushes a session's frames
 * from a native setImmediate) and clients start reading while the rest is
 * still being written; without slices no byte leaves before the last watcher
 * has been written to.
 */
const SLICE = 1000;

/** Most events written to one watcher in one write; one further behind gets the rest in the next writes. */
const MAX_BATCH = 64;

/**
 * The leader stream's fan-out: every WatchLeader call of a server, written
 * to from one place.
 *
 * Design (measured with 10,000 streams on two cores, bench/watch-fanout.ts):
 * - Each event is encoded and framed once (the caller's `encode` caches per
 *   event) and the same bytes go to every call, straight onto its HTTP/2
 *   stream (direct-stream.ts), bypassing grpc-js's per-message machinery;
 *   so do batches of several events, for the watchers that lag by the same.
 * - A publish schedules one pass over the watchers (a microtask, so events
 *   published in the same tick share the pass); the pass writes synchronously,
 *   with no generator, promise, timer or closure per watcher.
 * - The pass runs in slices of SLICE watchers so that sending overlaps writing.
 * - Each watcher keeps a cursor into the log and is written to in revision
 *   order, snapshot first. A slow consumer is back-pressured: once its call's
 *   buffer is full (`write` returns false) it is skipped until it drains, and
 *   then catches up from the log; if it fell further behind than the log keeps,
 *   it gets a fresh snapshot (the revision gap tells it). What is queued for a
 *   slow consumer is therefore bounded by its call's buffer, never by how many
 *   events it missed.
 */
export class LeaderFanout {
  private readonly watchers = new Set<Watcher>();
  private scheduled = false;
  private latest: readonly [LeaderEvent] | undefined;
  private latestEncoded: readonly Encoded[] = [];
  /**
   * The last batch of several events, by the revisions it spans: the watchers
   * a pass reaches after a second publish all lag by the same events, and get
   * the same array (which a direct sink frames into one buffer, once).
   */
  private lastBatch: { readonly from: number; readonly to: number; readonly encoded: readonly Encoded[] } | undefined;

  constructor(
    private readonly log: LeaderEventLog,
    private readonly encode: (e: LeaderEvent) => Encoded,
  ) {
    log.onPublish(() => this.schedule());
  }

  /** Watchers attached now. */
  get size(): number {
    return this.watchers.size;
  }

  /** Writes the current state to `sink`, then every change, until `signal` aborts. */
  attach(sink: StreamSink, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      if (signal.aborted) return resolve();
      const snapshot = this.log.snapshot();
      const w: Watcher = { sink, cursor: snapshot.revision, blocked: false, closed: false };
      this.watchers.add(w);
      signal.addEventListener(
        "abort",
        () => {
          w.closed = true;
          this.watchers.delete(w);
          resolve();
        },
        { once: true },
      );
      this.write(w, [snapshot]);
      this.catchUp(w);
    });
  }

  private encoded(events: readonly LeaderEvent[]): readonly Encoded[] {
    if (events !== this.latest) return events.map((e) => this.encode(e));
    if (this.latestEncoded[0] !== this.encode(events[0]!)) this.latestEncoded = [this.encode(events[0]!)];
    return this.latestEncoded;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.pass([...this.watchers], 0);
    });
  }

  private pass(targets: Watcher[], from: number): void {
    const end = Math.min(targets.length, from + SLICE);
    // Most watchers are one event behind: for them, one write of the shared bytes.
    const last = this.log.lastRevision;
    const latest = this.log.next(last - 1);
    const bytes = latest && latest.kind !== "snapshot" ? this.encoded(this.single(latest)) : undefined;
    for (let i = from; i < end; i++) {
      const w = targets[i]!;
      try {
        if (bytes && w.cursor === last - 1 && !w.blocked && !w.closed) {
          w.cursor = last;
          if (!w.sink.write(bytes)) this.block(w);
        } else this.catchUp(w);
      } catch {
        // One broken call must not cost the others their event; its own
        // cancellation removes it.
        w.closed = true;
      }
    }
    // A publish during the pass starts a pass of its own; this one still
    // brings the rest up to the newest revision, so nobody waits for both.
    if (end < targets.length) setImmediate(() => this.pass(targets, end));
  }

  private catchUp(w: Watcher): void {
    while (!w.blocked && !w.closed) {
      const e = this.log.next(w.cursor);
      if (!e) return;
      if (e.revision === this.log.lastRevision) {
        w.cursor = e.revision;
        this.write(w, this.single(e));
        continue;
      }
      // Several: published in the same tick, or the watcher was held back.
      // They go out in one write.
      const from = w.cursor;
      const batch: LeaderEvent[] = [];
      for (let n: LeaderEvent | undefined = e; n && batch.length < MAX_BATCH; n = this.log.next(w.cursor)) {
        batch.push(n);
        w.cursor = n.revision;
      }
      if (this.lastBatch?.from !== from || this.lastBatch.to !== w.cursor) this.lastBatch = { from, to: w.cursor, encoded: this.encoded(batch) };
      if (!w.sink.write(this.lastBatch.encoded)) this.block(w);
    }
  }

  /** The same one-element batch for every watcher that is one event behind. */
  private single(e: LeaderEvent): readonly [LeaderEvent] {
    if (this.latest?.[0] !== e) this.latest = [e];
    return this.latest;
  }

  private write(w: Watcher, events: readonly LeaderEvent[]): void {
    if (!w.sink.write(this.encoded(events))) this.block(w);
  }

  private block(w: Watcher): void {
    w.blocked = true;
    w.sink.onDrain(() => {
      w.blocked = false;
      this.catchUp(w);
    });
  }
}

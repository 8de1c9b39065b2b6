/**
 * An ordered, in-memory feed of events with rising revisions, fanned out to
 * any number of subscribers. A subscriber first gets a snapshot, then every
 * event after it in order; each has its own bounded buffer, so one slow
 * reader never holds up the others (it is cut off instead, and can resume
 * from a fresh snapshot).
 */
export interface FeedEvent<T> {
  readonly revision: number;
  readonly value: T;
}

export class EventFeed<T> {
  private revision = 0;
  private readonly subscribers = new Set<Subscriber<T>>();

  constructor(private readonly maxBuffered = 10_000) {}

  get currentRevision(): number {
    return this.revision;
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  publish(value: T): FeedEvent<T> {
    const event = { revision: ++this.revision, value };
    for (const s of this.subscribers) s.push(event);
    return event;
  }

  /**
   * Yields `snapshot(revision)` first, then every later event in order, until
   * `signal` aborts. The snapshot is taken synchronously with subscribing, so
   * no event falls between the two.
   */
  async *subscribe(snapshot: (revision: number) => T, signal: AbortSignal): AsyncGenerator<FeedEvent<T>> {
    const sub = new Subscriber<T>(this.maxBuffered);
    this.subscribers.add(sub);
    const first = { revision: this.revision, value: snapshot(this.revision) };
    const onAbort = () => sub.close();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      yield first;
      for (;;) {
        const next = await sub.next();
        if (next === undefined) return;
        yield next;
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      this.subscribers.delete(sub);
    }
  }
}

class Subscriber<T> {
  private buffer: FeedEvent<T>[] = [];
  private waiting: ((e: FeedEvent<T> | undefined) => void) | undefined;
  private closed = false;

  constructor(private readonly max: number) {}

  push(event: FeedEvent<T>): void {
    if (this.closed) return;
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = undefined;
      w(event);
      return;
    }
    if (this.buffer.length >= this.max) {
      this.close();
      return;
    }
    this.buffer.push(event);
  }

  next(): Promise<FeedEvent<T> | undefined> {
    const e = this.buffer.shift();
    if (e) return Promise.resolve(e);
    if (this.closed) return Promise.resolve(undefined);
    return new Promise((resolve) => (this.waiting = resolve));
  }

  close(): void {
    this.closed = true;
    const w = this.waiting;
    this.waiting = undefined;
    w?.(undefined);
  }
}

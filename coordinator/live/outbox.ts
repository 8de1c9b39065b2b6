/**
 * An unbounded single-consumer queue read as an async iterable: the messages
 * the coordinator sends down one agent stream. close(err) ends the stream with
 * that error (the RPC layer turns it into a gRPC status).
 */
export class Outbox<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private wake: (() => void) | undefined;
  private done = false;
  private error: unknown;

  get closed(): boolean {
    return this.done;
  }

  push(item: T): boolean {
    if (this.done) return false;
    this.items.push(item);
    this.wake?.();
    return true;
  }

  close(error?: unknown): void {
    if (this.done) return;
    this.done = true;
    this.error = error;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      while (this.items.length > 0) yield this.items.shift()!;
      if (this.done) {
        if (this.error !== undefined) throw this.error;
        return;
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }
}

/** An unbounded queue with one reader that awaits items: turns callbacks into an async iterator. */
export class AsyncQueue<T> {
  private readonly items: T[] = [];
  private waiter: (() => void) | undefined;

  push(item: T): void {
    this.items.push(item);
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /** The next item; waits for one. */
  async take(): Promise<T> {
    while (this.items.length === 0) await new Promise<void>((resolve) => (this.waiter = resolve));
    return this.items.shift()!;
  }
}

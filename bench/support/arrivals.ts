/**
 * Things seen at a performance.now() instant, and waiters for the first one
 * after a given instant that matches: how the benchmarks time an arrival.
 */
export class Arrivals<T extends { readonly at: number }> {
  private readonly seen: T[] = [];
  private waiters: (() => void)[] = [];

  add(item: T): void {
    this.seen.push(item);
    for (const w of [...this.waiters]) w();
  }

  next(match: (item: T) => boolean, since: number, timeoutMs: number, what: () => string): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no ${what()} within ${timeoutMs} ms`));
      }, timeoutMs);
      const check = () => {
        const hit = this.seen.find((a) => a.at > since && match(a));
        if (!hit) return;
        done();
        resolve(hit);
      };
      const done = () => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
      };
      this.waiters.push(check);
      check();
    });
  }
}

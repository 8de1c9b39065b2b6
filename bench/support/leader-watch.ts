import { LeaderService, type WatchLeaderResponse } from "../../gen/autonomy/ha/v1/leader_pb.js";
import { clientFor } from "../../rpc/client.js";

export interface Arrival {
  /** performance.now() when the event reached this process. */
  readonly at: number;
  readonly event: WatchLeaderResponse;
}

/**
 * One WatchLeader stream that timestamps every event on arrival, so a bench
 * measures "when did a client learn it" with no polling in between.
 */
export class LeaderWatch {
  readonly arrivals: Arrival[] = [];
  private readonly abort = new AbortController();
  private waiters: (() => void)[] = [];
  private failure: unknown;

  private constructor(readonly url: string) {
    void this.run();
  }

  static open(url: string): LeaderWatch {
    return new LeaderWatch(url);
  }

  /** Resolves once the stream's first event (the snapshot) arrived. */
  ready(timeoutMs = 5_000): Promise<Arrival> {
    return this.next(() => true, -Infinity, timeoutMs);
  }

  /** The first event arriving after `since` (performance.now()) that matches. */
  next(match: (e: WatchLeaderResponse) => boolean, since: number, timeoutMs: number): Promise<Arrival> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no matching leader event from ${this.url} within ${timeoutMs} ms${this.failure ? ` (stream failed: ${String(this.failure)})` : ""}`));
      }, timeoutMs);
      const check = () => {
        const hit = this.arrivals.find((a) => a.at > since && match(a.event));
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

  close(): void {
    this.abort.abort();
  }

  private async run(): Promise<void> {
    try {
      for await (const event of clientFor(LeaderService, this.url).watchLeader({}, { signal: this.abort.signal })) {
        this.arrivals.push({ at: performance.now(), event });
        for (const w of [...this.waiters]) w();
      }
    } catch (err) {
      if (!this.abort.signal.aborted) this.failure = err;
    }
  }
}

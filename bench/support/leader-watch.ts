import { testCredentials } from "../../test/support/pki.js";
import { Arrivals } from "./arrivals.js";
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
  private readonly arrivals = new Arrivals<Arrival>();
  private readonly abort = new AbortController();
  private failure: unknown;

  private constructor(
    readonly url: string,
    private readonly clusterId: string | undefined,
  ) {
    void this.run();
  }

  /** `clusterId` names the cluster on a coordinator serving several. */
  static open(url: string, clusterId?: string): LeaderWatch {
    return new LeaderWatch(url, clusterId);
  }

  /** Resolves once the stream's first event (the snapshot) arrived. */
  ready(timeoutMs = 5_000): Promise<Arrival> {
    return this.next(() => true, -Infinity, timeoutMs);
  }

  /** The first event arriving after `since` (performance.now()) that matches. */
  next(match: (e: WatchLeaderResponse) => boolean, since: number, timeoutMs: number): Promise<Arrival> {
    return this.arrivals.next((a) => match(a.event), since, timeoutMs, () =>
      `matching leader event from ${this.url}${this.failure ? ` (stream failed: ${String(this.failure)})` : ""}`,
    );
  }

  close(): void {
    this.abort.abort();
  }

  private async run(): Promise<void> {
    try {
      for await (const event of clientFor(LeaderService, this.url, { credentials: testCredentials(), clusterId: this.clusterId }).watchLeader({}, { signal: this.abort.signal })) {
        this.arrivals.add({ at: performance.now(), event });
      }
    } catch (err) {
      if (!this.abort.signal.aborted) this.failure = err;
    }
  }
}

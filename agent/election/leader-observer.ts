import type { Clock } from "../../core/clock.js";
import { describeError } from "../../core/errors.js";
import type { Logger } from "../../core/log.js";
import { noLeader, type LeaderView } from "../../core/model.js";
import type { SchemaName } from "../../db/identifiers.js";
import { readLeadership, readLockHolders } from "../../db/leadership.js";
import { readCoordinatorState } from "../../db/coordinator-state.js";
import type { Queryable } from "../../db/side-connection.js";

/** When a leader's heartbeat last moved, by our clock (not the remote timestamp). */
export interface HeartbeatWatch {
  readonly key: string;
  readonly sinceMs: number;
}

export function watchHeartbeat(previous: HeartbeatWatch | undefined, key: string, nowMs: number): HeartbeatWatch {
  return previous && previous.key === key ? previous : { key, sinceMs: nowMs };
}

/** What this node last saw of the leadership, through its side connection. */
export interface Observation {
  /** leadership_state as last read (or as we set it ourselves when we lead). */
  readonly view: LeaderView;
  /** application_name of the session that holds the lock. */
  readonly lockHolder: string | undefined;
  readonly lockHolderPid: number | undefined;
  readonly watch: HeartbeatWatch | undefined;
  /** The highest epoch this node has seen anywhere: terms it opened, rows it read, floors it was given. */
  readonly highestEpochSeen: number;
  /** The manual-reconcile hold as the coordinator recorded it in the database: no campaign of our own while on. */
  readonly recordedHold: boolean;
}

export interface LeaderObserverOptions {
  readonly db: Queryable;
  readonly schema: SchemaName;
  readonly clusterId: string;
  readonly nodeId: string;
  readonly clock: Clock;
  readonly log: Logger;
  /** Our own Write-Ready, for a leadership_state row that names us. */
  readonly selfReady: () => boolean;
  /** Called when the holder, the epoch or the lock holder changed. */
  readonly changed: () => void;
}

/** Reads leadership_state and the lock holder, and remembers when the leader's heartbeat last moved. */
export class LeaderObserver {
  private seen: Observation = { view: noLeader, lockHolder: undefined, lockHolderPid: undefined, watch: undefined, highestEpochSeen: 0, recordedHold: false };
  /** A notice asked for a read since the last one began. */
  private noticed = false;
  /** Ends the current rest early. */
  private wake: AbortController | undefined;

  constructor(private readonly o: LeaderObserverOptions) {}

  get current(): Observation {
    return this.seen;
  }

  /** Reads the row and the lock holder; returns the current epoch. */
  async refresh(): Promise<number> {
    const { o } = this;
    const row = await readLeadership(o.db, o.schema, o.clusterId);
    const holders = await readLockHolders(o.db, o.clusterId);
    const recorded = await readCoordinatorState(o.db, o.schema, o.clusterId);
    const holder = holders[0];
    const view: LeaderView = {
      holderId: row.holderId ?? "",
      epoch: row.epoch,
      acquiredAt: row.acquiredAt,
      writeReady: row.holderId === o.nodeId ? o.selfReady() : row.holderId !== undefined && holder?.applicationName === row.holderId,
      heartbeatAt: row.heartbeatAt,
    };
    const before = this.seen;
    const changed =
      view.holderId !== before.view.holderId || view.epoch !== before.view.epoch || holder?.applicationName !== before.lockHolder || recorded.reconcileHold !== before.recordedHold;
    this.seen = {
      view,
      lockHolder: holder?.applicationName,
      lockHolderPid: holder?.pid,
      watch: watchHeartbeat(before.watch, `${holder?.pid ?? "-"}|${row.holderId ?? "-"}|${row.epoch}|${row.heartbeatAt?.getTime() ?? "-"}`, o.clock.monotonicMs()),
      highestEpochSeen: Math.max(before.highestEpochSeen, row.epoch),
      recordedHold: recorded.reconcileHold,
    };
    if (changed) o.changed();
    return row.epoch;
  }

  noteEpoch(epoch: number): void {
    if (epoch > this.seen.highestEpochSeen) this.seen = { ...this.seen, highestEpochSeen: epoch };
  }

  /** We opened a term: we are the holder, without waiting for the next read. */
  sawOwnTerm(view: LeaderView): void {
    this.seen = { ...this.seen, view, lockHolder: this.o.nodeId, highestEpochSeen: Math.max(this.seen.highestEpochSeen, view.epoch) };
  }

  sawOwnHeartbeat(heartbeatAt: Date | undefined): void {
    this.seen = { ...this.seen, view: { ...this.seen.view, heartbeatAt } };
  }

  sawOwnResign(): void {
    this.seen = { ...this.seen, view: { ...this.seen.view, holderId: "", writeReady: false } };
  }

  /** Forget when the heartbeat last moved: the session it belonged to was ended. */
  forgetWatch(): void {
    this.seen = { ...this.seen, watch: undefined };
  }

  /**
   * Reads again soon, not at the next interval: the database announced a new
   * term. The read starts NOTICE_DELAY_MS later, and every notice until then
   * shares it.
   */
  readSoon(): void {
    this.noticed = true;
    this.wake?.abort();
  }

  /** Observes every `intervalMs` (sooner when told to read), until the signal aborts, running `after` after each read. */
  async run(signal: AbortSignal, intervalMs: number, after: () => Promise<void>): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.refresh();
        await after();
      } catch (err) {
        this.o.log.debug({ err: describeError(err) }, "observation failed");
      }
      await this.rest(intervalMs, signal);
    }
  }

  private async rest(intervalMs: number, signal: AbortSignal): Promise<void> {
    const { clock } = this.o;
    if (!this.noticed) {
      const wake = new AbortController();
      const stop = () => wake.abort();
      signal.addEventListener("abort", stop, { once: true });
      this.wake = wake;
      await clock.sleep(intervalMs, wake.signal).catch(() => undefined);
      this.wake = undefined;
      signal.removeEventListener("abort", stop);
    }
    if (!this.noticed || signal.aborted) return;
    await clock.sleep(NOTICE_DELAY_MS, signal).catch(() => undefined);
    this.noticed = false;
  }
}

/**
 * How long a notice's read waits. A notice comes as a term opens, while the
 * new leader's application starts writing: a moment later, the read is out
 * of the handover's way. It also bounds a flood of notices to one read per
 * delay.
 */
const NOTICE_DELAY_MS = 20;

import { sameLeader, type Leader, type LeaderUpdate, type StreamBehind } from "./leader-event.js";

/** What to do with one event from a server: report being behind, read skipped epochs back, give it on (or drop it). */
export interface SequenceStep {
  readonly behind: readonly StreamBehind[];
  /** Epochs between the last one given and this event's, to read from the history first (inclusive). */
  readonly missing?: { readonly from: number; readonly to: number };
  /** The event to give, or undefined when it repeats what was given or is older. */
  readonly give?: LeaderUpdate;
}

/**
 * Turns events from several servers and reconnects into one sequence in
 * epoch order, without repeats. A server's revisions count its own events
 * only (a restarted or different server starts afresh), so across streams
 * the epoch, which the database numbers, is what orders and de-duplicates:
 * a snapshot that repeats what was given is dropped, an older epoch is a
 * lagging server and is dropped with a "behind" note, and a jump of more
 * than one epoch asks for the skipped ones. Pure: follow-leader.ts does the I/O.
 */
export class LeaderSequence {
  private last: Leader | undefined;
  private revision: bigint | undefined;
  private url: string | undefined;

  get current(): Leader | undefined {
    return this.last;
  }

  /** `resumed`: the first event of a stream opened after a break. */
  next(u: LeaderUpdate, resumed: boolean): SequenceStep {
    const behind: StreamBehind[] = [];
    if (resumed || u.url !== this.url) this.revision = undefined;
    if (this.revision !== undefined && u.revision > this.revision + 1n) {
      behind.push({
        type: "behind",
        url: u.url,
        reason: `${u.url} skipped revisions ${this.revision + 1n}..${u.revision - 1n} (this client fell behind its event log); what follows is the current state`,
      });
    }
    this.revision = u.revision;
    this.url = u.url;
    const last = this.last;
    if (u.cause === "split_brain_detected" || u.cause === "split_brain_resolved") return { behind, give: u };
    // "Nobody leads" from a server that has not read an epoch yet says nothing about the epoch.
    const leader = u.leader.holderId === "" && u.leader.epoch === 0 && last ? { ...u.leader, epoch: last.epoch } : u.leader;
    if (last && leader.epoch < last.epoch) {
      behind.push({ type: "behind", url: u.url, reason: `${u.url} reports epoch ${leader.epoch}, older than epoch ${last.epoch} already given; ignored until it catches up` });
      return { behind };
    }
    if (last && sameLeader(leader, last)) return { behind };
    this.last = leader;
    const missing = last && last.epoch > 0 && leader.epoch > last.epoch + 1 ? { from: last.epoch + 1, to: leader.epoch - 1 } : undefined;
    return { behind, ...(missing ? { missing } : {}), give: { ...u, leader } };
  }
}

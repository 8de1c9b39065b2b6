import { EventFeed } from "../../core/event-feed.js";
import type { LeaderView } from "../../core/model.js";

export type LeaderEventKind = "snapshot" | "leader_changed" | "write_ready_changed" | "leader_lost";

export interface LeaderEvent {
  readonly kind: LeaderEventKind;
  readonly leader: LeaderView;
  readonly at: Date;
  readonly message: string;
}

/**
 * Turns a stream of leader views into leader events, publishing only real
 * changes (holder, epoch or write-ready), so a WatchLeader client sees each
 * change once and in order.
 */
export class LeaderFeed {
  readonly feed = new EventFeed<LeaderEvent>();
  private last: LeaderView | undefined;

  get current(): LeaderView | undefined {
    return this.last;
  }

  update(leader: LeaderView, at: Date): void {
    const prev = this.last;
    this.last = leader;
    if (prev && prev.holderId === leader.holderId && prev.epoch === leader.epoch && prev.writeReady === leader.writeReady) return;
    if (!prev) return;
    if (leader.holderId === "") {
      if (prev.holderId !== "") this.feed.publish({ kind: "leader_lost", leader, at, message: `${prev.holderId} no longer holds write authority (epoch ${prev.epoch})` });
      return;
    }
    if (prev.holderId !== leader.holderId || prev.epoch !== leader.epoch) {
      this.feed.publish({ kind: "leader_changed", leader, at, message: `${leader.holderId} holds epoch ${leader.epoch}` });
      return;
    }
    this.feed.publish({
      kind: "write_ready_changed",
      leader,
      at,
      message: `${leader.holderId} is ${leader.writeReady ? "" : "not "}Write-Ready for epoch ${leader.epoch}`,
    });
  }
}

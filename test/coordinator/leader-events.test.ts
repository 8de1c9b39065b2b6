import { describe, expect, it } from "vitest";
import { noLeader } from "../../core/model.js";
import { LeaderEventLog, type LeaderEvent } from "../../core/leader-event-log.js";

const leader = (holderId: string, epoch: number) => ({ ...noLeader, holderId, epoch });

async function take(it: AsyncIterator<LeaderEvent>, n: number): Promise<LeaderEvent[]> {
  const out: LeaderEvent[] = [];
  while (out.length < n) out.push((await it.next()).value as LeaderEvent);
  return out;
}

describe("leader event log: snapshot first, then every change in order", () => {
  it("every watcher sees the snapshot and then the same ordered revisions", async () => {
    const log = new LeaderEventLog(noLeader, () => new Date(0));
    log.publish("leader_changed", leader("a", 1), "a leads");
    const ac = new AbortController();
    const watchers = Array.from({ length: 50 }, () => log.watch(ac.signal)[Symbol.asyncIterator]());
    const snapshots = await Promise.all(watchers.map((w) => take(w, 1)));
    expect(snapshots.every(([s]) => s!.kind === "snapshot" && s!.revision === 1 && s!.leader.holderId === "a")).toBe(true);
    log.publish("leader_lost", leader("", 1), "a gone");
    log.publish("leader_changed", leader("b", 2), "b leads");
    const seen = await Promise.all(watchers.map((w) => take(w, 2)));
    for (const s of seen) expect(s.map((e) => `${e.revision}:${e.kind}:${e.leader.holderId}`)).toEqual(["2:leader_lost:", "3:leader_changed:b"]);
    ac.abort();
    expect((await watchers[0]!.next()).done).toBe(true);
  });

  it("a watcher that fell behind the log's capacity gets a fresh snapshot (the revision gap tells it)", async () => {
    const log = new LeaderEventLog(noLeader, () => new Date(0), 3);
    const ac = new AbortController();
    const w = log.watch(ac.signal)[Symbol.asyncIterator]();
    await take(w, 1);
    for (let i = 1; i <= 10; i++) log.publish("leader_changed", leader("n", i), `epoch ${i}`);
    const [next] = await take(w, 1);
    expect(next).toMatchObject({ kind: "snapshot", revision: 10 });
    ac.abort();
  });
});

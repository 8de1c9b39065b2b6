import { describe, expect, it } from "vitest";
import { LeaderSequence } from "../../client/leader-sequence.js";
import type { LeaderCause, LeaderUpdate } from "../../client/leader-event.js";

/* How followLeader orders and de-duplicates events from several servers and reconnects (pure logic). */

function update(url: string, revision: number, holderId: string, epoch: number, writeReady = true, cause: LeaderCause = "leader_changed"): LeaderUpdate {
  return { type: "leader", leader: { holderId, epoch, writeReady, acquiredAt: undefined }, cause, revision: BigInt(revision), url, at: new Date(0), message: "" };
}

describe("LeaderSequence", () => {
  it("gives a change once: a resumed snapshot that repeats it is dropped", () => {
    const s = new LeaderSequence();
    expect(s.next(update("a", 1, "n1", 7, true, "snapshot"), false).give?.leader.epoch).toBe(7);
    expect(s.next(update("b", 1, "n1", 7, true, "snapshot"), true)).toEqual({ behind: [] });
  });

  it("drops an older epoch from a lagging server and says so", () => {
    const s = new LeaderSequence();
    s.next(update("a", 4, "n2", 8), false);
    const step = s.next(update("b", 1, "n1", 7, true, "snapshot"), true);
    expect(step.give).toBeUndefined();
    expect(step.behind[0]?.reason).toMatch(/^b reports epoch 7, older than epoch 8 already given; ignored until it catches up$/);
  });

  it("asks for the epochs a jump skipped", () => {
    const s = new LeaderSequence();
    s.next(update("a", 1, "n1", 3), false);
    expect(s.next(update("b", 1, "n2", 6, true, "snapshot"), true)).toMatchObject({ missing: { from: 4, to: 5 }, give: { leader: { epoch: 6 } } });
  });

  it("reports a revision gap within one stream", () => {
    const s = new LeaderSequence();
    s.next(update("a", 1, "n1", 3), false);
    expect(s.next(update("a", 5, "n1", 3, false, "write_ready_changed"), false).behind[0]?.reason).toMatch(/^a skipped revisions 2\.\.4 /);
  });

  it("gives Write-Ready changes and the loss of the leader within an epoch, keeping the epoch when nobody leads", () => {
    const s = new LeaderSequence();
    s.next(update("a", 1, "n1", 3), false);
    expect(s.next(update("a", 2, "n1", 3, false, "write_ready_changed"), false).give?.leader.writeReady).toBe(false);
    expect(s.next(update("a", 3, "", 0, false, "leader_lost"), false).give?.leader).toMatchObject({ holderId: "", epoch: 3 });
    expect(s.next(update("a", 4, "n2", 4), false).missing).toBeUndefined();
  });
});

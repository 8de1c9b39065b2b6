import { describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { ManualClock } from "../core/clock.js";
import { backoffDelay, followStream } from "./follow-stream.js";

describe("backoffDelay", () => {
  it("doubles up to the cap, with up to half of it jitter", () => {
    const b = { initialMs: 250, maxMs: 5_000 };
    expect([0, 1, 2, 3, 4, 5, 10].map((a) => backoffDelay(a, b, () => 1))).toEqual([250, 500, 1000, 2000, 4000, 5000, 5000]);
    expect([0, 1, 2, 5].map((a) => backoffDelay(a, b, () => 0))).toEqual([125, 250, 500, 2500]);
  });
});

describe("followStream", () => {
  /** Streams that each yield their events, then fail with `end` (or end cleanly when undefined). */
  function streams(plan: { events: number[]; end?: Error }[]) {
    let i = 0;
    return async function* () {
      const step = plan[Math.min(i++, plan.length - 1)]!;
      for (const e of step.events) yield e;
      if (step.end) throw step.end;
    };
  }

  it("reconnects after a break with backoff and says when it lost and resumed the stream", async () => {
    const clock = new ManualClock();
    const stop = new AbortController();
    const seen: string[] = [];
    const done = followStream<number>({
      open: streams([{ events: [1, 2], end: new ConnectError("Session closed with error code 8", Code.Internal) }, { events: [], end: new Error("ECONNREFUSED") }, { events: [7] }]),
      signal: stop.signal,
      clock,
      random: () => 0,
      onLost: (reason) => seen.push(`lost: ${reason}`),
      onResumed: ({ attempts }) => seen.push(`resumed after ${attempts}`),
      onEvent: (e, { resumed }) => {
        seen.push(`${e}${resumed ? " (resumed)" : ""}`);
        if (e === 7) stop.abort();
      },
    });
    for (let i = 0; i < 20 && !stop.signal.aborted; i++) {
      await new Promise((r) => setImmediate(r));
      clock.advance(1_000);
    }
    await done;
    expect(seen).toEqual(["1", "2", "lost: Session closed with error code 8", "resumed after 2", "7 (resumed)"]);
  });

  it("throws a failure before the first event, so a wrong URL fails fast", async () => {
    const err = new ConnectError("connect ECONNREFUSED", Code.Unavailable);
    await expect(followStream({ open: streams([{ events: [], end: err }]), signal: new AbortController().signal, onEvent: () => undefined })).rejects.toBe(err);
  });

  it("does not retry what another attempt cannot fix", async () => {
    const denied = new ConnectError("no", Code.PermissionDenied);
    const open = streams([{ events: [1], end: denied }]);
    await expect(followStream({ open, signal: new AbortController().signal, onEvent: () => undefined })).rejects.toBe(denied);
  });
});

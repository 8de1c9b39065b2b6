import { describe, expect, it } from "vitest";
import { ManualClock } from "../../core/clock.js";
import { LeaseFence } from "./lease-fence.js";
import type { Term } from "./readiness.js";

const term = (confirmedAtMs: number): Term => ({ epoch: 7, acquiredAt: new Date(0), confirmedAtMs, heartbeatAt: undefined });
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

function fenceWithClock() {
  const clock = new ManualClock();
  const life = new AbortController();
  const fired: Term[] = [];
  const fence = new LeaseFence(clock, 1_500, life.signal, (t) => fired.push(t));
  return { clock, life, fired, fence };
}

describe("the lease fence fires at the deadline of the last confirmation", () => {
  it("not 1ms before the lease runs out, and at once when it does", async () => {
    const { clock, fired, fence } = fenceWithClock();
    const t = term(0);
    fence.arm(t);
    clock.advance(1_499);
    await settle();
    expect(fired).toEqual([]);
    clock.advance(1);
    await settle();
    expect(fired).toEqual([t]);
  });

  it("a newer confirmation moves the deadline; the old one never fires", async () => {
    const { clock, fired, fence } = fenceWithClock();
    fence.arm(term(0));
    clock.advance(1_000);
    const renewed = term(1_000);
    fence.arm(renewed);
    clock.advance(1_000);
    await settle();
    expect(fired).toEqual([]);
    clock.advance(500);
    await settle();
    expect(fired).toEqual([renewed]);
  });

  it("a confirmation already past its lease fires at once", async () => {
    const { clock, fired, fence } = fenceWithClock();
    clock.advance(5_000);
    fence.arm(term(0));
    clock.advance(0);
    await settle();
    expect(fired).toHaveLength(1);
  });

  it("disarmed by a resign, and by the end of the agent's lifetime", async () => {
    const { clock, life, fired, fence } = fenceWithClock();
    fence.arm(term(0));
    fence.disarm();
    clock.advance(2_000);
    await settle();
    fence.arm(term(2_000));
    life.abort();
    clock.advance(2_000);
    await settle();
    expect(fired).toEqual([]);
  });
});

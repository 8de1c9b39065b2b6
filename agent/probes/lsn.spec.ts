import { describe, expect, it } from "vitest";
import { LsnHistory, parseLsn } from "./lsn.js";

describe("parseLsn", () => {
  it("orders LSNs across the 32-bit boundary", () => {
    expect(parseLsn("0/FFFFFFFF")! < parseLsn("1/0")!).toBe(true);
    expect(parseLsn("16/B374D848")).toBe((0x16n << 32n) | 0xb374d848n);
    expect(parseLsn("nonsense")).toBeUndefined();
    expect(parseLsn(null)).toBeUndefined();
  });
});

describe("LsnHistory", () => {
  it("measures lag as the age of the oldest WAL the replica has not applied", () => {
    const h = new LsnHistory();
    h.record(0, 100n);
    h.record(1_000, 200n);
    h.record(2_000, 300n);
    expect(h.lagSeconds(2_000, 300n)).toBe(0); // has everything
    expect(h.lagSeconds(2_000, 250n)).toBe(0); // behind only the newest sample: under one probe interval
    expect(h.lagSeconds(2_000, 150n)).toBe(1); // WAL at 200 was written a second ago
    expect(h.lagSeconds(5_000, 50n)).toBe(5); // paused: keeps growing
    expect(h.lagSeconds(5_000, undefined)).toBeUndefined();
  });

  it("forgets samples older than it needs", () => {
    const h = new LsnHistory(1_000);
    for (let t = 0; t <= 10_000; t += 100) h.record(t, BigInt(t + 1));
    expect(h.lagSeconds(10_000, 0n)).toBeLessThan(1.2);
  });
});

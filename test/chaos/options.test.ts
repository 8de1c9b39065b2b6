import { describe, expect, it } from "vitest";
import { parseChaosArgs, UsageError } from "../../chaos/options.js";

describe("chaos flags", () => {
  it("reads a full command line", () => {
    const o = parseChaosArgs(["--seed", "7", "--duration", "60", "--faults", "kill-leader,db-promote", "--nodes", "4", "--slow-writes", "200", "--out", "/tmp/x.json"]);
    expect(o).toMatchObject({ seed: 7, durationMs: 60_000, faults: ["kill-leader", "db-promote"], nodes: 4, slowWritesMs: 200, out: "/tmp/x.json" });
  });

  it("names the valid kinds when a fault kind is unknown", () => {
    expect(() => parseChaosArgs(["--seed", "1", "--duration", "60", "--faults", "kill-leader,unplug"])).toThrow(/unknown fault kind "unplug"; valid kinds: kill-leader, kill-follower/);
  });

  it.each([
    [["--duration", "60"], /--seed is required/],
    [["--seed", "1"], /--duration is required/],
    [["--seed", "x", "--duration", "60"], /--seed must be a whole number, got "x"/],
    [["--seed", "1", "--duration", "5"], /--duration must be between 10 and/],
    [["--seed", "1", "--duration", "60", "--nodes", "2"], /--nodes must be between 3 and 9, got 2/],
    [["--seed", "1", "--duration", "60", "--bogus"], /Unknown option '--bogus'/],
  ])("refuses %j", (args, message) => {
    expect(() => parseChaosArgs(args)).toThrow(UsageError);
    expect(() => parseChaosArgs(args)).toThrow(message);
  });
});

import { describe, expect, it } from "vitest";
import { closest, editDistance } from "./did-you-mean.js";

describe("did you mean", () => {
  it.each([
    ["status", "status", 0],
    ["stauts", "status", 1],
    ["statu", "status", 1],
    ["--orchestrator-ulr", "--orchestrator-url", 1],
    ["kitten", "sitting", 3],
  ])("%s is %i edits from %s", (a, b, d) => {
    expect(editDistance(a, b)).toBe(d);
  });

  const ha = ["status", "failover", "split-brain", "pause", "resume", "history", "watch"];
  it.each([
    ["stauts", "status"],
    ["failvoer", "failover"],
    ["splitbrain", "split-brain"],
    ["pasue", "pause"],
    ["promote", undefined],
    ["x", undefined],
    ["list", undefined],
  ])("%s → %s", (typed, hint) => {
    expect(closest(typed, ha)).toBe(hint);
  });
});

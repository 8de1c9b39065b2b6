import { describe, expect, it } from "vitest";
import { resolveSettings } from "../core/settings.js";
import { parseListen } from "../core/host-port.js";
import { agentConfig, agentSettings } from "./config.js";

const required = ["--node-id", "cp-node-1", "--database-url", "postgres://postgres@127.0.0.1:5432/postgres"];
const configFrom = (argv: string[], env: NodeJS.ProcessEnv = {}) => agentConfig(resolveSettings("agent", agentSettings, [...required, ...argv], env).settings);

describe("agent configuration", () => {
  it("has safe defaults", () => {
    const c = configFrom([]);
    expect(c).toMatchObject({ listenHost: "127.0.0.1", listenPort: 8888, heartbeatIntervalMs: 250, leaseMs: 1000, takeoverAfterMs: 2000, campaignIntervalMs: 200, lagWarnSeconds: 5, lagCriticalSeconds: 10 });
    expect(c.schema.name).toBe("public");
  });

  it("takes env vars, with flags winning", () => {
    const c = configFrom(["--priority", "7"], { AUTONOMY_PRIORITY: "3", AUTONOMY_LEASE: "1500ms" });
    expect(c.priority).toBe(7);
    expect(c.leaseMs).toBe(1500);
  });

  it.each([
    [["--lease", "400ms"], /--lease \(400ms\) must be at least twice --heartbeat-interval \(250ms\)/],
    [["--takeover-after", "1200ms"], /--takeover-after \(1200ms\) must exceed --lease plus --heartbeat-interval/],
    [["--lag-warn", "10s", "--lag-critical", "5s"], /--lag-critical \(5s\) must be greater than --lag-warn \(10s\)/],
    [["--nofailover", "--successor"], /contradict/],
    [["--listen", "8888"], /--listen "8888" must be HOST:PORT/],
    [["--schema", "Robert'); DROP TABLE x;--"], /not a plain lower-case SQL identifier/],
  ])("refuses %j with a message naming the relation", (argv, message) => {
    expect(() => configFrom(argv)).toThrow(message);
  });

  it("refuses malformed values and unknown flags as usage errors", () => {
    expect(() => configFrom(["--lease", "soon"])).toThrow(/--lease: "soon" is not a duration/);
    expect(() => configFrom(["--priority", "high"])).toThrow(/--priority: expected a whole number/);
    expect(() => configFrom(["--bogus"])).toThrow(/Unknown option '--bogus'/);
    expect(() => resolveSettings("agent", agentSettings, [], {})).toThrow(/--node-id is required/);
  });

  it("parses IPv6 listen addresses", () => {
    expect(parseListen("[::1]:9000")).toEqual({ host: "::1", port: 9000 });
  });
});

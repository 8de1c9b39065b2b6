import { describe, expect, it } from "vitest";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnAutonomy } from "../support/processes.js";
import { freePort } from "../../pgcluster/index.js";

async function run(args: string[], env: Record<string, string> = {}) {
  const p = spawnAutonomy("agent-cli", args, env);
  const code = await p.waitExit();
  return { code, output: p.output.join("\n") };
}

describe("autonomy agent on bad input", () => {
  it("a bad flag is one line on stderr and exit 2", async () => {
    const { code, output } = await run(["agent", "--node-id", "cp-node-1", "--database-url", "postgres://x@127.0.0.1:1/db", "--lease", "soon"]);
    expect(code).toBe(2);
    expect(output).toMatch(/^autonomy agent: --lease: "soon" is not a duration; use e\.g\. 500ms, 5s or 1m/);
    expect(output).not.toMatch(/\s+at\s.+\(.*:\d+:\d+\)/); // no stack trace
  });

  it("an unreachable database is one line and exit 1", async () => {
    const port = await freePort();
    const { code, output } = await run(["agent", "--node-id", "cp-node-1", "--database-url", `postgres://x@127.0.0.1:${port}/db`, "--connect-timeout", "1s"]);
    expect(code).toBe(1);
    expect(output.trim().split("\n")).toHaveLength(1);
    expect(output).toMatch(new RegExp(`cannot connect to the database: 127\\.0\\.0\\.1:${port}: connect ECONNREFUSED`));
  });

  it("reads a --config file and refuses unknown keys in it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "autonomy-cfg-"));
    try {
      const file = join(dir, "agent.json");
      writeFileSync(file, JSON.stringify({ "node-id": "cp-node-1", "database-url": "postgres://x@127.0.0.1:1/db", "lease": "100ms" }));
      const bad = await run(["agent", "--config", file]);
      expect(bad.code).toBe(2);
      expect(bad.output).toMatch(/--lease \(100ms\) must be at least twice --heartbeat-interval/);
      writeFileSync(file, JSON.stringify({ "node-id": "cp-node-1", leese: "3s" }));
      const unknown = await run(["agent", "--config", file]);
      expect(unknown.code).toBe(2);
      expect(unknown.output).toMatch(/unknown setting "leese"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("--help lists every flag with its env var and exits 0", async () => {
    const { code, output } = await run(["agent", "--help"]);
    expect(code).toBe(0);
    for (const flag of ["--node-id", "--database-url", "--local-database-url", "--coordinator-url", "--listen", "--schema", "--priority", "--nofailover", "--lease", "--config"]) {
      expect(output).toContain(flag);
    }
    expect(output).toContain("AUTONOMY_DATABASE_URL");
  });
});

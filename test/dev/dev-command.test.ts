import { afterAll, describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "../../core/clock.js";
import { freePortBlock } from "../support/dev-cluster.js";
import type { DevDescription } from "../../cli/dev/dev-cluster.js";
import { getJson, spawnAutonomy, type AutonomyProcess } from "../support/processes.js";

function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("autonomy dev (npm start)", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "autonomy-dev-"));
  let dev: AutonomyProcess | undefined;

  afterAll(async () => {
    await dev?.stop(30_000);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("starts a real cluster, describes it in dev.json, refuses a second instance, and leaves nothing behind on SIGINT", async () => {
    // One block: the agents listen on agentBasePort and the ports after it.
    const coordinatorPort = await freePortBlock(3);
    const agentBasePort = coordinatorPort + 1;
    const args = ["dev", "--data-dir", dataDir, "--coordinator-port", String(coordinatorPort), "--agent-base-port", String(agentBasePort), "--agents", "2"];
    dev = spawnAutonomy("dev", args, { AUTONOMY_LOG_LEVEL: "info" });
    const describePath = join(dataDir, "dev.json");
    const d = await waitFor(
      () => {
        if (!dev!.running) throw new Error(`autonomy dev exited:\n${dev!.tail()}`);
        return existsSync(describePath) ? (JSON.parse(readFileSync(describePath, "utf8")) as DevDescription) : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 200, what: "dev.json" },
    );
    expect(d.orchestrator_url).toBe(`http://127.0.0.1:${coordinatorPort}`);
    expect(d.agents.map((a) => a.node_id)).toEqual(["cp-node-1", "cp-node-2"]);
    expect(d.agents.map((a) => a.url)).toEqual([`http://127.0.0.1:${agentBasePort}`, `http://127.0.0.1:${agentBasePort + 1}`]);
    expect(d.postgres.map((p) => p.role)).toEqual(["primary", "standby"]);
    const pids = [d.coordinator.pid, ...d.agents.map((a) => a.pid), ...d.postgres.map((p) => p.pid)];
    expect(pids.every(alive)).toBe(true);
    expect(dev.output.join("\n")).toContain(`export AUTONOMY_ORCHESTRATOR_URL=${d.orchestrator_url}`);

    // The PATH line it prints works from any directory, in a non-interactive shell (where an alias would not).
    expect(dev.output.join("\n")).toContain(`export PATH="${join(dataDir, "bin")}:$PATH"`);
    const fromScript = await new Promise<{ code: number | null; stdout: string }>((done) =>
      execFile("sh", ["-c", `export PATH="${join(dataDir, "bin")}:$PATH"; autonomy --version`], { cwd: tmpdir() }, (err, stdout) =>
        done({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout }),
      ),
    );
    expect(fromScript).toEqual({ code: 0, stdout: expect.stringMatching(/^autonomy \S+\n$/) });

    // The cluster really works: one Write-Ready leader, seen through the coordinator too.
    // dev.json is written once every process answers; the first election may still be under way.
    const leader = await waitFor(async () => {
      const body = (await getJson<{ holder_id: string; write_ready: boolean }>(`${d.orchestrator_url}/v1/health/leader`))?.body;
      return body?.holder_id ? body : undefined;
    }, {
      timeoutMs: 20_000,
      what: "the coordinator to know the leader",
    });
    expect(["cp-node-1", "cp-node-2"]).toContain(leader.holder_id);

    const second = spawnAutonomy("dev-2", ["dev", "--data-dir", dataDir]);
    expect(await second.waitExit()).toBe(1);
    expect(second.output.join("\n")).toMatch(/autonomy dev is already running \(pid \d+; see .*dev\.json\)/);
    expect(pids.every(alive)).toBe(true);

    dev.signal("SIGINT");
    expect(await dev.waitExit()).toBe(0);
    await waitFor(() => pids.every((p) => !alive(p)), { timeoutMs: 10_000, what: "every started process to exit" });
    expect(existsSync(describePath)).toBe(false);
    expect(existsSync(join(dataDir, "dev.lock"))).toBe(false);
    expect(dev.output.join("\n")).toContain("nothing left running");
    // Two PostgreSQL servers, a coordinator and agents start here: on a loaded
    // two-core machine that alone can take most of a minute.
  }, 180_000);
});

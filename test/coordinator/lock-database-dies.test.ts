import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../core/clock.js";
import { freePort, startPgCluster, type PgCluster } from "../../pgcluster/index.js";
import { runCli } from "../support/cli-run.js";
import { getJson, spawnAutonomy, waitHealthy, type AutonomyProcess } from "../support/processes.js";
import { ScriptedAgent } from "./support/scripted-agent.js";

describe("the coordinator outlives its lock database dying abruptly", () => {
  let pg: PgCluster;
  let coordinator: AutonomyProcess | undefined;
  let agent: ScriptedAgent | undefined;
  let auditDir: string;

  beforeAll(async () => {
    pg = await startPgCluster({ standbys: 0 });
    auditDir = await mkdtemp(path.join(os.tmpdir(), "autonomy-db-dies-"));
  });
  afterAll(async () => {
    await agent?.stop();
    await coordinator?.stop();
    await pg?.close();
    await rm(auditDir, { recursive: true, force: true });
  });

  it("pg_ctl stop -m immediate, twice: the process keeps serving, says the database is unreachable, and resumes when it returns", async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const clusterId = `dies${process.pid}`;
    const schema = `dies_${process.pid}`;
    coordinator = spawnAutonomy("coordinator", [
      "coordinator", "--database-url", pg.primary.url(), "--listen", `127.0.0.1:${port}`, "--audit-dir", auditDir,
      "--cluster-id", clusterId, "--schema", schema, "--poll-interval", "10ms", "--failure-timeout", "2s", "--report-stale-after", "1500ms",
      "--intruder-grace", "1500ms",
    ]);
    await waitHealthy(coordinator, url);
    agent = await new ScriptedAgent({ nodeId: "cp-node-1", coordinatorUrl: url, databaseUrl: pg.primary.url(), clusterId, schema }).start();
    await agent.campaign();
    await waitFor(async () => (await getJson<{ holder_id: string }>(`${url}/v1/health/leader`))?.body.holder_id === "cp-node-1", { timeoutMs: 10_000, what: "cp-node-1 leads" });

    for (let round = 1; round <= 2; round++) {
      await pg.primary.stop("immediate");
      const down = await waitFor(async () => {
        if (!coordinator!.running) throw new Error(`coordinator exited:\n${coordinator!.tail()}`);
        const r = await getJson<{ ready: boolean; database: string }>(`${url}/readyz`);
        return r?.status === 503 ? r : undefined;
      }, { timeoutMs: 10_000, what: `round ${round}: /readyz reports the database unreachable` });
      expect(down.body.ready).toBe(false);
      expect(down.body.database).not.toBe("reachable");
      expect((await getJson(`${url}/healthz`))?.status).toBe(200);
      const metrics = await (await fetch(`${url}/metrics`)).text();
      expect(metrics).toMatch(/^autonomy_ha_database_reachable\{[^}]*\} 0$/m);
      // What it knows is still served, marked as the last reading. (The
      // agent's lock session died with the server, so who leads may change.)
      const leader = await getJson<{ holder_id: string; database_reachable: boolean }>(`${url}/v1/health/leader`);
      expect(leader?.body).toMatchObject({ database_reachable: false });
      const status = await runCli(["ha", "status", "--orchestrator-url", url, "--output", "json"]);
      expect(status.code, status.stderr).toBe(0);
      expect(JSON.parse(status.stdout)).toMatchObject({ database_error: expect.stringMatching(/ECONNREFUSED|terminat|shut/) });

      await pg.primary.start();
      await waitFor(async () => {
        if (!coordinator!.running) throw new Error(`coordinator exited:\n${coordinator!.tail()}`);
        return (await getJson(`${url}/readyz`))?.status === 200;
      }, { timeoutMs: 20_000, what: `round ${round}: the database read again` });
      expect(await (await fetch(`${url}/metrics`)).text()).toMatch(/^autonomy_ha_database_reachable\{[^}]*\} 1$/m);
    }
    expect(coordinator.running).toBe(true);
  });
});

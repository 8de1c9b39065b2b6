import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../core/clock.js";
import { freePort, startPgCluster, type PgCluster } from "../../pgcluster/index.js";
import { AgentProcess } from "../support/agents.js";
import { describeRun, runCli } from "../support/cli-run.js";
import { TestPki, useTestPki } from "../support/pki.js";
import { getJson, spawnAutonomy, waitHealthy, type AutonomyProcess } from "../support/processes.js";

/*
 * A real coordinator and real agents with mTLS on every port, attacked with
 * the credentials an attacker might hold: another node's certificate, a
 * read-only token, none at all. Each refusal is clear, and nothing changes:
 * not leadership_state, not leader_epochs, not the view, not the audit.
 */

const READ_TOKEN = "dashboard-token-0123456789abcdef";

describe("a cluster with mTLS everywhere", () => {
  let db: PgCluster;
  let pki: TestPki;
  let coordinator: AutonomyProcess;
  let url: string;
  let auditDir: string;
  const agents: AgentProcess[] = [];

  beforeAll(async () => {
    [db, pki] = await Promise.all([startPgCluster({ standbys: 0 }), TestPki.create()]);
    useTestPki(pki);
    const dir = mkdtempSync(join(tmpdir(), "autonomy-secure-"));
    auditDir = join(dir, "audit");
    writeFileSync(join(dir, "tokens"), `dashboard read ${READ_TOKEN}\n`);
    const port = await freePort();
    url = `https://127.0.0.1:${port}`;
    coordinator = spawnAutonomy("coordinator", [
      "coordinator", "--database-url", db.primary.url(), "--listen", `127.0.0.1:${port}`, "--audit-dir", auditDir,
      "--token-file", join(dir, "tokens"), "--report-stale-after", "1500ms", "--failure-timeout", "3s",
      ...(await pki.serverArgs("coordinator", "coordinator")),
    ]);
    await waitHealthy(coordinator, url);
    for (const [i, nodeId] of ["cp-node-1", "cp-node-2"].entries()) {
      agents.push(await AgentProcess.start({ nodeId, databaseUrl: db.primary.url(), coordinatorUrl: url, priority: 200 - i * 100 }));
    }
    await waitFor(async () => (await status()).leader?.write_ready === true && (await status()).nodes?.length === 2, { timeoutMs: 30_000, what: "a Write-Ready leader and both agents seen" });
  }, 120_000);

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.process.stop()));
    await coordinator?.stop();
    await db?.close();
    useTestPki(undefined);
  });

  async function status(env: Record<string, string> = {}): Promise<{ leader?: { holder_id: string; epoch: number; write_ready: boolean }; nodes?: { node_id: string }[] }> {
    const r = await runCli(["ha", "status", "--orchestrator-url", url, "--output", "json"], env);
    return r.code === 0 ? JSON.parse(r.stdout) : {};
  }

  async function databaseState() {
    const c = new pg.Client({ connectionString: db.primary.url() });
    await c.connect();
    try {
      const ls = await c.query("SELECT holder_id, epoch FROM leadership_state");
      const le = await c.query("SELECT epoch, holder_id, resigned_at FROM leader_epochs ORDER BY epoch");
      return { leadership: ls.rows, epochs: le.rows };
    } finally {
      await c.end();
    }
  }

  const auditLines = () => {
    try {
      return readFileSync(join(auditDir, "audit.jsonl"), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as { type: string; caller: string });
    } catch {
      return [];
    }
  };

  it("an agent presenting another node's certificate is refused, says so, and never enters the view", async () => {
    const before = await databaseState();
    const [cert, key] = [join(pki.ca.dir, "cp-node-1.agent.crt"), join(pki.ca.dir, "cp-node-1.agent.key")];
    const port = await freePort();
    const impostor = spawnAutonomy("impostor", [
      "agent", "--node-id", "cp-node-9", "--database-url", db.primary.url(), "--coordinator-url", url, "--listen", `127.0.0.1:${port}`,
      "--nofailover", "--tls-cert", cert, "--tls-key", key, "--tls-ca", pki.ca.ca,
    ]);
    try {
      await waitFor(() => impostor.output.some((l) => l.includes("certificate names cp-node-1")), { timeoutMs: 30_000, what: "the impostor's refusal in its log" }).catch((err: unknown) => {
        throw new Error(`${(err as Error).message}\n${impostor.tail()}`);
      });
      const line = impostor.output.find((l) => l.includes("certificate names cp-node-1"))!;
      expect(line).toMatch(/cp-node-9/);
      expect(line).toMatch(/will not fix itself/);
      expect((await status()).nodes?.map((n) => n.node_id).sort()).toEqual(["cp-node-1", "cp-node-2"]);
    } finally {
      await impostor.stop();
    }
    // The impostor is --nofailover, and its lock session is its own: nothing moved.
    expect(await databaseState()).toEqual(before);
  });

  it("a read-only token may read, but a failover with it is refused and changes nothing", async () => {
    const env = { AUTONOMY_TLS_CERT: "", AUTONOMY_TLS_KEY: "", AUTONOMY_TOKEN: READ_TOKEN };
    expect((await status(env)).leader?.write_ready).toBe(true);
    const before = await databaseState();
    const audited = auditLines().length;
    const r = await runCli(["ha", "failover", "trigger", "--orchestrator-url", url, "--operator", "mallory", "--reason", "x"], env);
    expect(r.code, describeRun(r)).toBe(1);
    expect(r.stderr).toMatch(/not allowed: token:dashboard may not make this call: it needs the admin role/);
    expect(await databaseState()).toEqual(before);
    expect(auditLines().slice(audited).filter((e) => e.type.startsWith("ha.failover"))).toEqual([]);
  });

  it("without any credential every call is refused, health on loopback excepted", async () => {
    const r = await runCli(["ha", "status", "--orchestrator-url", url], { AUTONOMY_TLS_CERT: "", AUTONOMY_TLS_KEY: "" });
    expect(r.code, describeRun(r)).toBe(1);
    expect(r.stderr).toMatch(/not allowed: no credentials: present a client certificate/);
    expect((await getJson(`${url}/healthz`))?.status).toBe(200);
  });

  it("an admin certificate fails over, through an agent too; the audit names the certificate, never a header", async () => {
    const leader = (await status()).leader!;
    const viaAgent = agents.find((a) => a.nodeId === leader.holder_id)!;
    const r = await runCli(["ha", "failover", "trigger", "--orchestrator-url", viaAgent.url, "--operator", "alice", "--reason", "patching"]);
    expect(r.code, describeRun(r)).toBe(0);
    const done = await waitFor(() => auditLines().filter((e) => e.type === "ha.failover.completed").at(-1), { timeoutMs: 10_000, what: "the failover audit event" });
    expect(done.caller).toMatch(new RegExp(`^cert:CN=bench-operator,OU=admin via cert:CN=${viaAgent.nodeId},OU=agent \\(`));
    expect((await databaseState()).leadership[0]).toMatchObject({ epoch: String(leader.epoch + 1) });
  });
});

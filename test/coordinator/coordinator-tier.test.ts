import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code } from "@connectrpc/connect";
import { waitFor } from "../../core/clock.js";
import { IDEMPOTENCY_KEY_HEADER } from "../../core/metadata.js";
import { HaAdminService } from "../../gen/autonomy/ha/v1/admin_pb.js";
import { clientFor } from "../../rpc/client.js";
import { startPgCluster, type PgCluster } from "../../pgcluster/index.js";
import { AgentProcess, writeReadyAgents } from "../support/agents.js";
import { describeRun, runCli, type CliResult } from "../support/cli-run.js";
import { freePortBlock } from "../support/dev-cluster.js";
import { spawnAutonomy, waitHealthy, type AutonomyProcess } from "../support/processes.js";

interface CoordinatorStatusJson {
  coordinator_id: string;
  role: string;
  term: number;
  active_id: string | null;
  active_url: string | null;
}

/**
 * Three coordinators on one lock database: one is active (it holds the
 * coordinator lock and gives orders stamped with its term), the others are
 * standbys that serve reads and name the active one. Killed with SIGKILL,
 * the active one is replaced by a standby, which continues its work: a
 * planned failover in flight is finished or clearly failed, once; a
 * manual-reconcile hold stays.
 */
describe("active/standby coordinators", () => {
  let cluster: PgCluster;
  let db: pg.Client;
  let auditDir: string;
  let base: number;
  const coordinators = new Map<string, { url: string; process: AutonomyProcess }>();
  const agents: AgentProcess[] = [];
  const urls = () => [0, 1, 2].map((i) => `http://127.0.0.1:${base + i}`);
  const all = () => urls().join(",");
  const cli = (args: string[], url = all()) => runCli([...args, "--orchestrator-url", url], { AUTONOMY_OPERATOR: "alice" });

  async function startCoordinator(i: number): Promise<void> {
    const id = `coord-${i}`;
    const url = urls()[i]!;
    const process = spawnAutonomy(id, [
      "coordinator", "--database-url", cluster.primary.url(), "--listen", `127.0.0.1:${base + i}`, "--audit-dir", path.join(auditDir, id),
      "--coordinator-id", id, "--settle", "0",
    ]);
    coordinators.set(id, { url, process });
    await waitHealthy(process, url);
  }

  async function statusAt(url: string): Promise<{ coordinator: CoordinatorStatusJson; leader: { holder_id: string; epoch: number }; maintenance: boolean } | undefined> {
    const r = await runCli(["ha", "status", "--output", "json", "--orchestrator-url", url]);
    return r.code === 0 ? JSON.parse(r.stdout) : undefined;
  }

  /** The active coordinator, once every running one agrees which it is. */
  async function active(): Promise<{ id: string; url: string; term: number }> {
    return waitFor(
      async () => {
        const running = [...coordinators.values()].filter((c) => c.process.running);
        const seen = await Promise.all(running.map((c) => statusAt(c.url)));
        if (seen.some((s) => s === undefined)) return undefined;
        const actives = seen.filter((s) => s!.coordinator.role === "active");
        if (actives.length !== 1) return undefined;
        const a = actives[0]!.coordinator;
        if (!seen.every((s) => s!.coordinator.active_id === a.coordinator_id && s!.coordinator.term === a.term)) return undefined;
        return { id: a.coordinator_id, url: a.active_url!, term: a.term };
      },
      { timeoutMs: 20_000, what: "exactly one active coordinator that every coordinator names" },
    );
  }

  const leader = async () => waitFor(async () => {
    const ready = await writeReadyAgents(agents);
    return ready.length === 1 ? ready[0]!.nodeId : undefined;
  }, { timeoutMs: 20_000, what: "exactly one Write-Ready agent" });

  beforeAll(async () => {
    cluster = await startPgCluster({ standbys: 0 });
    db = new pg.Client({ connectionString: cluster.primary.url() });
    await db.connect();
    auditDir = await mkdtemp(path.join(os.tmpdir(), "autonomy-tier-audit-"));
    base = await freePortBlock(3);
    for (const i of [0, 1, 2]) await startCoordinator(i);
    for (const [nodeId, priority] of [["cp-node-1", 300], ["cp-node-2", 200], ["cp-node-3", 100]] as const) {
      agents.push(await AgentProcess.start({ nodeId, databaseUrl: cluster.primary.url(), coordinatorUrl: all(), priority }));
    }
    await leader();
  }, 120_000);

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.process.stop()));
    await Promise.all([...coordinators.values()].map((c) => c.process.stop()));
    await db?.end();
    await cluster?.close();
    await rm(auditDir, { recursive: true, force: true });
  });

  it("one coordinator is active; a standby serves reads and sends a mutation to the active one, changing nothing itself", async () => {
    const a = await active();
    const standby = [...coordinators.entries()].find(([id]) => id !== a.id)![1];
    // Reads on a standby: the same leader as the active one sees.
    const onStandby = await statusAt(standby.url);
    expect(onStandby?.coordinator.role).toBe("standby");
    expect(onStandby?.leader.holder_id).toBe((await statusAt(a.url))?.leader.holder_id);

    const refused = await cli(["ha", "pause", "--reason", "sent to a standby only"], standby.url);
    expect(refused.code, describeRun(refused)).not.toBe(0);
    expect(refused.stderr).toContain("is a standby; the active coordinator is");
    expect(refused.stderr).toContain(a.url);
    expect((await db.query("SELECT count(*)::int AS n FROM coordinator_state WHERE maintenance")).rows[0].n).toBe(0);
    // The web view's action on a standby is refused the same way (503), and changes nothing either.
    const web = await fetch(`${standby.url}/v1/admin/maintenance`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ paused: true, operator: "alice", reason: "from the standby's page" }),
    });
    expect(web.status).toBe(503);
    expect(((await web.json()) as { error: string }).error).toContain(`is a standby; the active coordinator is ${a.id} at ${a.url}`);
    expect((await db.query("SELECT count(*)::int AS n FROM coordinator_state WHERE maintenance")).rows[0].n).toBe(0);
    expect((await db.query("SELECT count(*)::int AS n FROM audit_events WHERE type = 'ha.maintenance.paused'")).rows[0].n).toBe(0);

    // Listing every coordinator, the standby first: the CLI follows it to the active one.
    const paused = await cli(["ha", "pause", "--reason", "follow the standby's pointer"], `${standby.url},${a.url}`);
    expect(paused.code, describeRun(paused)).toBe(0);
    await waitFor(async () => (await statusAt(standby.url))?.maintenance || undefined, { timeoutMs: 10_000, what: "the standby to show maintenance" });
    expect((await cli(["ha", "resume", "--reason", "done"])).code).toBe(0);
  });

  it("a request retried with its idempotency key returns the first answer and acts once; the key reused for another request is refused", async () => {
    const key = `tier-test-${Date.now()}`;
    const admin = clientFor(HaAdminService, all(), { metadata: { [IDEMPOTENCY_KEY_HEADER]: key }, timeoutMs: 30_000 });
    const before = await leader();
    const target = agents.map((x) => x.nodeId).find((id) => id !== before)!;
    const request = { targetNode: target, operator: "alice", reason: "idempotency test" };
    const first = await admin.triggerFailover(request);
    const epochs = (await db.query("SELECT count(*)::int AS n FROM leader_epochs")).rows[0].n;
    const again = await admin.triggerFailover(request);
    expect(again).toEqual(first);
    expect((await db.query("SELECT count(*)::int AS n FROM leader_epochs")).rows[0].n).toBe(epochs);
    expect(await leader()).toBe(target);

    const other = admin.triggerFailover({ ...request, targetNode: before });
    await expect(other).rejects.toMatchObject({ code: Code.InvalidArgument, rawMessage: expect.stringContaining(`idempotency key ${key} was already used for another request`) });
    const malformed = clientFor(HaAdminService, all(), { metadata: { [IDEMPOTENCY_KEY_HEADER]: "bad key!" } }).setMaintenance({ paused: true, operator: "alice", reason: "x" });
    await expect(malformed).rejects.toMatchObject({ code: Code.InvalidArgument });
    expect((await db.query("SELECT count(*)::int AS n FROM leader_epochs")).rows[0].n).toBe(epochs);
    expect((await db.query("SELECT count(*)::int AS n FROM coordinator_state WHERE maintenance")).rows[0].n).toBe(0);
    expect(await leader()).toBe(target);
  });

  it("SIGKILL of the active coordinator during a planned failover: a standby takes over, and the failover is done once or fails clearly", async () => {
    const a = await active();
    const before = await leader();
    const target = agents.map((x) => x.nodeId).find((id) => id !== before)!;
    const epochBefore = Number((await db.query("SELECT max(epoch) AS e FROM leader_epochs")).rows[0].e);

    // The request is recorded as running before anything acts: kill the active one right then.
    const failover: Promise<CliResult> = cli(["ha", "failover", "trigger", "--target", target, "--reason", "tier test: kill mid-failover"]);
    const key = await waitFor(async () => (await db.query("SELECT idempotency_key FROM coordinator_requests WHERE method = 'TriggerFailover' AND state = 'running'")).rows[0]?.idempotency_key as string | undefined, {
      timeoutMs: 20_000,
      intervalMs: 2,
      what: "the failover request recorded as running",
    });
    // Frozen where it stands (mid-way, its lock session still open), then killed.
    coordinators.get(a.id)!.process.signal("SIGSTOP");
    await coordinators.get(a.id)!.process.kill();
    const r = await failover;

    const next = await active();
    expect(next.id).not.toBe(a.id);
    expect(next.term).toBeGreaterThan(a.term);
    const row = (await db.query("SELECT state, term::int AS term FROM coordinator_requests WHERE idempotency_key = $1", [key])).rows[0];
    // Finished by the one that took over (frozen at once, the killed one had not answered).
    expect([a.term, next.term]).toContain(row.term);
    if (r.code === 0) {
      // Done: the target leads in a new term, and the request is recorded done (once).
      expect(row.state).toBe("done");
      expect(await leader()).toBe(target);
      expect(Number((await db.query("SELECT max(epoch) AS e FROM leader_epochs")).rows[0].e)).toBeGreaterThan(epochBefore);
    } else {
      // Failed: one clear line, and the same failure recorded; never both.
      expect(row.state, describeRun(r)).toBe("failed");
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
    }
    // Exactly one leader afterwards, whatever happened.
    await leader();
    await startCoordinator(Number(a.id.slice(-1)));
  });

  it("SIGKILL of the active coordinator during a manual-reconcile: the hold stays with the next one", async () => {
    const a = await active();
    const r = await cli(["ha", "split-brain", "recover", "--strategy", "manual-reconcile", "--reason", "tier test: inspect first"]);
    expect(r.code, describeRun(r)).toBe(0);
    await waitFor(async () => ((await writeReadyAgents(agents)).length === 0 ? true : undefined), { timeoutMs: 10_000, what: "nobody Write-Ready" });
    await coordinators.get(a.id)!.process.kill();
    const next = await active();
    expect(next.id).not.toBe(a.id);

    // For several report intervals and campaign attempts, nobody campaigns.
    const until = performance.now() + 3_000;
    while (performance.now() < until) {
      expect((await writeReadyAgents(agents)).length).toBe(0);
      expect((await db.query("SELECT count(*)::int AS n FROM leader_epochs WHERE resigned_at IS NULL")).rows[0].n).toBe(0);
    }
    const f = await cli(["ha", "failover", "trigger", "--target", "cp-node-2", "--reason", "tier test: reconciled, cp-node-2 chosen"]);
    expect(f.code, describeRun(f)).toBe(0);
    expect(await leader()).toBe("cp-node-2");
    await startCoordinator(Number(a.id.slice(-1)));
  });
});

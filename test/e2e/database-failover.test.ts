import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../core/clock.js";
import { readAuditEvents } from "../../coordinator/audit/index.js";
import { freePort, startPgCluster, type PgCluster } from "../../pgcluster/index.js";
import { ServerClients, termsOn } from "../support/servers.js";
import { AgentProcess } from "../support/agents.js";
import { describeRun, expectOk, labelledValues, runCli } from "../support/cli-run.js";
import { getJson, spawnAutonomy, waitHealthy, type AutonomyProcess } from "../support/processes.js";


/**
 * The two-primary case as an operator meets it (seed 004, issue "one writer
 * across a PostgreSQL failover"): the standby is promoted with pg_promote
 * while the old primary keeps running, nodes cp-node-1/2 can reach only the
 * old primary, and cp-node-3 is started against the promoted one. The
 * coordinator reads both servers. No epoch is ever held on both databases, no
 * node leads on the superseded one, the zombie is contained and its
 * assert_epoch refuses, promote-leader crowns only a node on the promoted
 * server, a failover to a node left on the zombie is refused at once, and the
 * promotion is audited with its RTO.
 */
describe("a standby promoted while the old primary keeps running", () => {
  let cluster: PgCluster;
  let auditDir: string;
  let coordinator: AutonomyProcess;
  let coordinatorUrl: string;
  const agents: AgentProcess[] = [];
  const servers = new ServerClients();

  const db = (url: string) => servers.open(url);
  const terms = termsOn;
  const audit = async () => (await readAuditEvents(auditDir)).events;
  const cli = (args: string[]) => runCli(args, { AUTONOMY_ORCHESTRATOR_URL: coordinatorUrl, AUTONOMY_OPERATOR: "alice" });

  beforeAll(async () => {
    cluster = await startPgCluster({ standbys: 1 });
    auditDir = await mkdtemp(path.join(os.tmpdir(), "autonomy-dbfailover-audit-"));
    const port = await freePort();
    const [p, s] = [cluster.primary, cluster.standby];
    coordinatorUrl = `http://127.0.0.1:${port}`;
    coordinator = spawnAutonomy("coordinator", [
      "coordinator",
      "--database-url", `postgres://postgres@${p.host}:${p.port},${s.host}:${s.port}/postgres?target_session_attrs=read-write`,
      "--listen", `127.0.0.1:${port}`,
      "--audit-dir", auditDir,
      "--region", "eu-west-1",
      "--poll-interval", "100ms",
      "--report-stale-after", "1500ms",
      "--failure-timeout", "3s",
      "--failover-cooldown", "0s",
      "--operation-timeout", "8s",
    ]);
    await waitHealthy(coordinator, coordinatorUrl);
  });
  afterAll(async () => {
    await Promise.all([...agents.map((a) => a.process.stop()), coordinator?.stop()]);
    await servers.closeAll();
    await cluster?.close();
    if (auditDir) await rm(auditDir, { recursive: true, force: true });
  });

  it("contains the zombie, leads only on the promoted server above every epoch, and refuses every order that would lead on the zombie", async () => {
    const [p, s] = [cluster.primary, cluster.standby];
    for (const [nodeId, priority] of [["cp-node-1", 300], ["cp-node-2", 200]] as const) {
      agents.push(await AgentProcess.start({ nodeId, databaseUrl: p.url(), coordinatorUrl, priority, args: ["--region", "us-east-1"] }));
    }
    const [a1] = agents;
    await waitFor(async () => (await a1!.writeReady())?.ready, { timeoutMs: 20_000, what: "cp-node-1 to lead on the primary" });
    const zombie = await db(p.url());
    const zombieEpoch = (await a1!.leader())!.current_epoch;

    // The old leader's application keeps writing with its epoch on the old primary.
    await zombie.query("CREATE TABLE IF NOT EXISTS decisions (epoch bigint, at timestamptz DEFAULT clock_timestamp())");
    let writing = true;
    let lastZombieCommit = 0;
    const writer = (async () => {
      const c = await db(p.url());
      while (writing) {
        try {
          await c.query("BEGIN");
          await c.query("SELECT assert_epoch($1)", [zombieEpoch]);
          await c.query("INSERT INTO decisions (epoch) VALUES ($1)", [zombieEpoch]);
          await c.query("COMMIT");
          lastZombieCommit = Date.now();
        } catch {
          await c.query("ROLLBACK").catch(() => undefined);
        }
        await new Promise((r) => setImmediate(r));
      }
    })();

    // Promote the standby while the primary keeps running; a node joins on the promoted server.
    const promotedAt = Date.now();
    await s.promote();
    const promoted = await db(s.url());
    agents.push(await AgentProcess.start({ nodeId: "cp-node-3", databaseUrl: s.url(), coordinatorUrl, priority: 100, args: ["--region", "eu-west-1"] }));
    const a3 = agents[2]!;

    // Contained: fenced in the database, audited; cp-node-3 leads on the promoted server above every epoch.
    await waitFor(async () => (await audit()).some((e) => e.type === "ha.database.contained" && e.evidence.fence_written === true), {
      timeoutMs: 20_000,
      what: "the zombie to be contained",
    });
    await waitFor(async () => (await a3.writeReady())?.ready, { timeoutMs: 20_000, what: "cp-node-3 to lead on the promoted server" });
    writing = false;
    await writer;

    const zombieTerms = await terms(zombie);
    const promotedTerms = (await terms(promoted)).filter((t) => t.epoch > zombieEpoch);
    expect(zombieTerms.filter((t) => t.open)).toEqual([]);
    expect(zombieTerms.every((t) => t.epoch <= zombieEpoch)).toBe(true); // no term ever opened on the zombie after the promotion
    expect(promotedTerms.length).toBeGreaterThan(0);
    expect(promotedTerms.filter((t) => t.open)).toEqual([expect.objectContaining({ holder_id: "cp-node-3" })]);
    expect(Math.min(...promotedTerms.map((t) => t.epoch))).toBeGreaterThan(Math.max(...zombieTerms.map((t) => t.epoch)));
    // The zombie refuses every epoch; its application's writes stopped.
    for (const e of [zombieEpoch, zombieEpoch + 1]) {
      const err = await zombie.query("SELECT assert_epoch($1)", [e]).then(() => undefined, (x: unknown) => x as { code: string });
      expect(err?.code).toBe("AH001");
    }
    const stoppedAt = lastZombieCommit;
    expect(stoppedAt).toBeGreaterThanOrEqual(promotedAt - 60_000);

    // The nodes left on the zombie are held; the status shows the promoted primary.
    let last = "";
    await waitFor(async () => {
      const r = await cli(["ha", "status", "--output", "json"]);
      last = r.stdout;
      const st = JSON.parse(r.stdout) as { nodes: { node_id: string; role: string }[]; database: { timeline: number; writes_usable: boolean } };
      return st.database?.writes_usable && st.database.timeline === 2 && ["cp-node-1", "cp-node-2"].every((n) => ["held", "disconnected"].includes(st.nodes.find((x) => x.node_id === n)?.role ?? ""));
    }, { timeoutMs: 20_000, what: "the nodes on the zombie to be held and writes usable on timeline 2" }).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}\nlast status: ${last}`);
    });
    const status = await cli(["ha", "status"]);
    expectOk(status);
    const fields = labelledValues(status.lines);
    expect(fields.get("Timeline")).toBe("2");
    expect(fields.get("Writes Usable")).toBe("true");
    expect(fields.get("Writer Region")).toBe("eu-west-1");

    // seed 004 §5 on /readyz, and the promotion audited with its RTO.
    const ready = await getJson<{ cluster: { writes_usable: boolean; writer: { node_id: string; timeline: number; writer_region: string }; highest_epoch: number } }>(`${coordinatorUrl}/readyz`);
    expect(ready?.body.cluster).toMatchObject({ writes_usable: true, writer: { node_id: "cp-node-3", timeline: 2, writer_region: "eu-west-1" } });
    expect(ready!.body.cluster.highest_epoch).toBeGreaterThan(zombieEpoch);
    const promotion = await waitFor(async () => (await audit()).find((e) => e.type === "ha.database.promoted"), { timeoutMs: 10_000, what: "ha.database.promoted" });
    expect(promotion.node_id).toBe("cp-node-3");
    expect(promotion.evidence.rto_ms).toEqual(expect.any(Number));

    // promote-leader crowns only a node on the promoted server.
    const wrong = await cli(["ha", "split-brain", "recover", "--strategy", "promote-leader", "--target", "cp-node-1", "--reason", "try the zombie"]);
    expect(wrong.code, describeRun(wrong)).toBe(3);
    expect(wrong.stderr).toMatch(/superseded primary/);
    const right = await cli(["ha", "split-brain", "recover", "--strategy", "promote-leader", "--target", "cp-node-3", "--reason", "keep the promoted server"]);
    expectOk(right);

    // A failover to a node left on the zombie is refused at once, with the reason.
    // (A refusal, exit 3, not the timeout of an order that could never complete.)
    const refused = await cli(["ha", "failover", "trigger", "--target", "cp-node-2", "--reason", "post-reconcile: cp-node-2 chosen"]);
    expect(refused.code, describeRun(refused)).toBe(3);
    expect(refused.stderr).toMatch(/cp-node-2 .*superseded/);

    // Still exactly one open term, on the promoted server; none on the zombie.
    expect((await terms(zombie)).filter((t) => t.open)).toEqual([]);
    expect((await terms(promoted)).filter((t) => t.open).map((t) => t.holder_id)).toEqual(["cp-node-3"]);
  });
});

import pgLib from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../core/clock.js";
import { LOCK_CLASS_ID } from "../../db/identifiers.js";
import { decide } from "../../coordinator/decide/decide.js";
import { detectIntruders } from "../../coordinator/detect/intruder.js";
import { makePolicy } from "../../coordinator/config.js";
import { renderMetrics } from "../../coordinator/live/metrics.js";
import { dbTruth, followerReport, healthyCluster, leaderReport, node } from "../../coordinator/view/builders.js";
import { leaderOf } from "../../coordinator/view/cluster-view.js";
import { noLeader } from "../../core/model.js";
import { startPgCluster, type PgCluster } from "../../pgcluster/index.js";
import { Harness } from "./support/harness.js";

const NOW = 1_000_000;
const policy = makePolicy({ designateSuccessor: false, reportStaleAfterMs: 3_000, failureTimeoutMs: 30_000, intruderGraceMs: 5_000, holderMismatchGraceMs: 500 });

/** cp-node-1 resigned (its lock session, pid 2001, holds nothing); pid 6666 holds the lock wearing its name. */
function impersonated(heldForMs: number, reportedAgoMs = 100) {
  const v = healthyCluster(NOW, 7);
  return {
    ...v,
    nodes: [
      node(followerReport("cp-node-1", "", 7, { lockBackendPid: 2001 }), NOW - reportedAgoMs),
      node(followerReport("cp-node-2", "", 7, { lockBackendPid: 2002 }), NOW - reportedAgoMs),
    ],
    db: dbTruth(undefined, 7, NOW, {
      lockHolders: [{ pid: 6666, applicationName: "cp-node-1", backendStart: new Date("2026-03-18T09:59:00Z"), clientAddr: "10.9.9.9" }],
      lockHoldersSinceMs: NOW - heldForMs,
    }),
  };
}

describe("intruders: a lock holder no agent's report names", () => {
  it("is flagged once every node reported after it appeared, ended only after the intruder grace, and is nobody's leader", () => {
    // Just granted: a real agent's report naming it may still be on its way.
    expect(detectIntruders(impersonated(300, 100), policy, NOW)).toEqual([]);
    const flagged = detectIntruders(impersonated(2_000), policy, NOW);
    expect(flagged).toMatchObject([{ pid: 6666, impersonates: "cp-node-1", terminable: false }]);
    expect(flagged[0]!.detail).toBe(`pid 6666 (application_name "cp-node-1", from 10.9.9.9) holds the leader lock, but cp-node-1's own reports name no such session: it is not cp-node-1's agent`);
    expect(leaderOf(impersonated(2_000), policy, NOW)).toMatchObject({ holderId: "", writeReady: false });
    expect(decide(impersonated(2_000), policy, NOW).map((d) => d.kind)).toEqual(["intruder_wait"]);

    const [d] = decide(impersonated(5_000), policy, NOW);
    expect(d).toMatchObject({ kind: "terminate_intruder", pid: 6666, applicationName: "cp-node-1" });
    expect(d!.reason).toMatch(/: terminate pid 6666 \(held the lock 5000ms, intruder grace 5000ms\)$/);
  });

  it("a real agent's session is never an intruder: named by pid, or its name is a disconnected node (hung-leader path), or an older agent reports no pid", () => {
    const v = healthyCluster(NOW, 7); // cp-node-1 reports pid 1007, which holds the lock
    expect(detectIntruders(v, policy, NOW)).toEqual([]);
    const renamed = { ...v, db: { ...v.db!, lockHolders: [{ ...v.db!.lockHolders[0]!, applicationName: "psql" }] } };
    expect(detectIntruders(renamed, policy, NOW)).toEqual([]); // the pid is cp-node-1's, whatever the name
    const disconnected = impersonated(60_000);
    const gone = { ...disconnected, nodes: disconnected.nodes.map((n) => (n.nodeId === "cp-node-1" ? { ...n, connected: false, lastReportMs: NOW - 60_000 } : n)) };
    expect(detectIntruders(gone, policy, NOW)).toEqual([]);
    expect(decide(gone, policy, NOW)[0]!.kind).not.toBe("terminate_intruder");
    const older = impersonated(60_000);
    const noPid = { ...older, nodes: older.nodes.map((n) => (n.nodeId === "cp-node-1" ? { ...n, report: leaderReport("cp-node-1", 7, { lockBackendPid: 0 }) } : n)) };
    expect(detectIntruders(noPid, policy, NOW)).toEqual([]);
  });

  it("a holder under a name no node has is flagged but left to the failure timeout (a restarted coordinator does not know every agent yet)", () => {
    const v = impersonated(10_000);
    const unknown = { ...v, db: { ...v.db!, lockHolders: [{ ...v.db!.lockHolders[0]!, applicationName: "cp-node-9" }] } };
    expect(detectIntruders(unknown, policy, NOW)).toMatchObject([{ pid: 6666, impersonates: undefined, terminable: false }]);
    expect(decide(unknown, policy, NOW).map((d) => d.kind)).not.toContain("terminate_intruder");
  });

  it.each([
    [{ intruderGraceMs: 1_000 }, "intruder-grace (1000ms) must be at least report-stale-after (2000ms)"],
    [{ intruderGraceMs: 400, holderMismatchGraceMs: 500, reportStaleAfterMs: 300 }, "intruder-grace (400ms) must be greater than holder-mismatch-grace (500ms)"],
    [{ nodeExpiryMs: 2_000 }, "node-expiry (2000ms) must be greater than failure-timeout (2500ms"],
    [{ maxNodes: 0 }, "max-nodes must be a whole number of at least 1, got 0"],
  ])("the policy refuses %o, naming the relation", (overrides, message) => {
    expect(() => makePolicy(overrides)).toThrow(message);
  });

  it("is exported as metrics", async () => {
    const text = await renderMetrics({
      clusterId: "default", leader: noLeader, nodes: [], splitBrain: false, splitBrainDetections: 0, failovers: { planned: 0, automatic: 0, recovery: 0 },
      maintenance: false, databaseReachable: true, watchers: 0, intruders: { current: 1, detected: 2, terminated: 1 },
    });
    expect(text).toMatch(/^autonomy_ha_intruder_lock_holders\{cluster_id="default"\} 1$/m);
    expect(text).toMatch(/^autonomy_ha_intruders_detected_total\{cluster_id="default"\} 2$/m);
    expect(text).toMatch(/^autonomy_ha_intruders_terminated_total\{cluster_id="default"\} 1$/m);
  });
});

describe("over real PostgreSQL: a plain client takes the leader lock under cp-node-1's name", () => {
  let pg: PgCluster;
  let sql: pgLib.Client;
  let h: Harness | undefined;
  let intruder: pgLib.Client | undefined;

  beforeAll(async () => {
    pg = await startPgCluster({ standbys: 0 });
    sql = new pgLib.Client({ connectionString: pg.primary.url() });
    await sql.connect();
  });
  afterEach(async () => {
    await intruder?.end().catch(() => undefined);
    await h?.close();
    h = undefined;
  });
  afterAll(async () => {
    await sql?.end();
    await pg?.close();
  });

  it("is flagged and audited, terminated (that pid only) long before the hung-leader timeout, and then a real node leads", async () => {
    // failure-timeout 30s: the hung-leader path cannot be what clears it within the deadlines below.
    // The 4 s grace leaves time to look at the intruder while it still holds the lock.
    h = await new Harness(pg.primary.url(), { failureTimeoutMs: 30_000, intruderGraceMs: 4_000 }).start();
    const first = await h.agent("cp-node-1", { priority: 200 });
    await first.campaign();
    const second = await h.agent("cp-node-2", { priority: 100 });
    await waitFor(async () => (await h!.json("/v1/health/primary")).status === 200, { timeoutMs: 10_000, what: "cp-node-1 Write-Ready" });

    // An application role's connection, named like the leader, queues on the leader lock.
    intruder = new pgLib.Client({ connectionString: pg.primary.url(), application_name: "cp-node-1" });
    intruder.on("error", () => undefined);
    await intruder.connect();
    const intruderPid = (intruder as unknown as { processID: number }).processID;
    const grabbed = intruder.query("SELECT pg_advisory_lock($1, hashtext($2))", [LOCK_CLASS_ID, h.clusterId]).then(
      () => "granted",
      (e: unknown) => `ended: ${String(e)}`,
    );
    await waitFor(async () => (await sql.query("SELECT 1 FROM pg_locks WHERE pid = $1 AND NOT granted", [intruderPid])).rowCount === 1, { timeoutMs: 5_000, what: "the intruder queued" });
    const epochsBefore = (await sql.query(`SELECT epoch, holder_id FROM ${h.schema}.leader_epochs WHERE cluster_id = $1 ORDER BY epoch`, [h.clusterId])).rows;

    // cp-node-1 resigns (as in a planned failover): the lock goes to the intruder.
    await first.resign(false);
    expect(await grabbed).toBe("granted");

    const [detected] = await waitFor(async () => {
      const a = await h!.audit("ha.intruder.detected");
      return a.length > 0 ? a : undefined;
    }, { timeoutMs: 5_000, what: "ha.intruder.detected" });
    expect(detected).toMatchObject({ node_id: "cp-node-1", evidence: { pid: intruderPid, application_name: "cp-node-1", impersonates: "cp-node-1" } });
    expect(detected!.message).toMatch(`pid ${intruderPid} (application_name "cp-node-1"`);
    // While it holds the lock nobody is leader: the cluster is not write-ready, and cp-node-1 is not blamed as a hung leader.
    expect((await h.json<{ holder_id: string }>("/v1/health/leader")).body.holder_id).toBe("");
    expect(await h.json("/v1/health/write-ready")).toMatchObject({ status: 200, body: { ready: false, holder_id: "", reason: "no leader" } });
    expect((await h.json("/v1/health/primary")).status).toBe(503);

    const [terminated] = await waitFor(async () => {
      const a = await h!.audit("ha.intruder.terminated");
      return a.length > 0 ? a : undefined;
    }, { timeoutMs: 10_000, what: "ha.intruder.terminated" });
    expect(terminated!.message).toBe(`terminated intruding lock session pid ${intruderPid} (application_name "cp-node-1")`);
    expect(terminated!.evidence).toMatchObject({ pid: intruderPid, terminated: true });
    // pg_terminate_backend returns once the backend is signalled; it leaves pg_stat_activity as it exits.
    await waitFor(async () => (await sql.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", [intruderPid])).rowCount === 0, { timeoutMs: 5_000, what: "the intruder's backend gone" });

    // The lock is free again: a real agent takes it with a new epoch.
    await waitFor(() => first.isLeader || second.isLeader, { timeoutMs: 10_000, what: "a real node leads" });
    const leader = first.isLeader ? first : second;
    await waitFor(async () => (await h!.json<{ holder_id: string }>("/v1/health/leader")).body.holder_id === leader.nodeId, { timeoutMs: 5_000, what: "the coordinator sees the real leader" });
    expect((await h.json("/v1/health/primary")).status).toBe(200);
    // Both agents' own lock sessions are alive: only the intruder was ended.
    expect((await sql.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY($1)", [[first.pid, second.pid]])).rows[0]).toEqual({ n: 2 });
    // The intruder opened no term, and nobody was failed over as a hung leader.
    const epochsAfter = (await sql.query(`SELECT epoch, holder_id FROM ${h.schema}.leader_epochs WHERE cluster_id = $1 ORDER BY epoch`, [h.clusterId])).rows;
    expect(epochsAfter.slice(0, epochsBefore.length)).toEqual(epochsBefore);
    expect(epochsAfter.slice(epochsBefore.length).map((r) => r.holder_id)).toEqual([leader.nodeId]);
    expect((await h.audit("ha.failover.automatic")).filter((e) => /hung leader/.test(e.message))).toEqual([]);
    // Ended once, audited once: the reads while its backend was exiting did not end it again.
    expect(await h.audit("ha.intruder.terminated")).toHaveLength(1);
  });
});

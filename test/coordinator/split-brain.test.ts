import pgLib from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../core/clock.js";
import { RecoveryStrategy } from "../../gen/autonomy/ha/v1/admin_pb.js";
import { LeaderEventKind } from "../../gen/autonomy/ha/v1/leader_pb.js";
import { startPgCluster, type PgCluster } from "../../pgcluster/index.js";
import { Harness } from "./support/harness.js";

const who = { operator: "carol", reason: "split-brain drill" };

describe("coordinator split-brain detection and recovery over real gRPC and PostgreSQL", () => {
  let pg: PgCluster;
  let h: Harness | undefined;
  let sql: pgLib.Client;

  beforeAll(async () => {
    pg = await startPgCluster({ standbys: 1 });
    sql = new pgLib.Client({ connectionString: pg.primary.url() });
    await sql.connect();
  });
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });
  afterAll(async () => {
    await sql?.end();
    await pg?.close();
  });

  async function start(nodes: string[], policy = {}) {
    h = await new Harness(pg.primary.url(), policy).start();
    const first = await h.agent(nodes[0]!);
    await waitFor(() => first.isLeader, { timeoutMs: 10_000, what: `${nodes[0]} to lead` });
    const rest = [];
    for (const id of nodes.slice(1)) rest.push(await h.agent(id));
    const admin = h.admin();
    await waitFor(async () => (await admin.getStatus({})).nodes.filter((n) => n.connected).length === nodes.length, { timeoutMs: 10_000, what: "all nodes reported" });
    const kinds: LeaderEventKind[] = [];
    const ac = new AbortController();
    const watching = (async () => {
      for await (const e of h!.leader().watchLeader({}, { signal: ac.signal })) kinds.push(e.kind);
    })().catch(() => undefined);
    await waitFor(() => kinds.length > 0, { timeoutMs: 5_000, what: "the leader stream's snapshot" });
    const stopWatching = async () => {
      ac.abort();
      await watching;
    };
    return { h, first, rest, admin, kinds, stopWatching };
  }

  it("holder mismatch (leadership_state edited) is raised without being asked, and promote-leader repairs it with a new epoch", async () => {
    const { h, first, admin, kinds, stopWatching } = await start(["cp-node-1", "cp-node-2"]);
    const epoch = first.epoch;
    await sql.query(`UPDATE ${h.schema}.leadership_state SET holder_id = 'cp-node-2' WHERE cluster_id = $1`, [h.clusterId]);
    const [detected] = await waitFor(async () => {
      const a = await h.audit("ha.split_brain.detected");
      return a.length > 0 ? a : undefined;
    }, { timeoutMs: 5_000, what: "ha.split_brain.detected" });
    expect(detected!.message).toMatch(/holder_mismatch: lock held by cp-node-1; leadership_state.holder_id = cp-node-2/);
    expect(detected!.evidence).toMatchObject({ database: { holder_id: "cp-node-2", lock_holders: ["cp-node-1"] } });
    await waitFor(() => kinds.includes(LeaderEventKind.SPLIT_BRAIN_DETECTED), { timeoutMs: 5_000, what: "SPLIT_BRAIN_DETECTED on the leader stream" });
    const d = await admin.detectSplitBrain({});
    expect(d).toMatchObject({ splitBrainDetected: true, holderMismatch: true, epochDivergence: false, unclosedEpochs: 1 });
    expect(d.detectedAt).toBeDefined();
    expect(d.criteria.find((c) => c.name === "holder_mismatch")?.detail).toBe("lock held by cp-node-1; leadership_state.holder_id = cp-node-2");
    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    expect(metrics).toMatch(/autonomy_ha_split_brain\{[^}]*\} 1/);

    const r = await admin.recoverSplitBrain({ ...who, strategy: RecoveryStrategy.PROMOTE_LEADER });
    expect(r).toMatchObject({ success: true, strategy: "promote-leader", leaderId: "cp-node-1", epoch: BigInt(epoch + 1) });
    expect(r.message).toBe(`stale records cleared; cp-node-1 confirmed as leader for epoch ${epoch + 1}`);
    await waitFor(async () => !(await admin.detectSplitBrain({})).splitBrainDetected, { timeoutMs: 5_000, what: "detection to clear" });
    const [state] = (await sql.query(`SELECT holder_id, epoch FROM ${h.schema}.leadership_state WHERE cluster_id = $1`, [h.clusterId])).rows;
    expect(state).toEqual({ holder_id: "cp-node-1", epoch: String(epoch + 1) });
    const recovered = await h.audit("ha.split_brain.recovered");
    expect(recovered.map((e) => [e.operator, e.reason, e.node_id])).toEqual([["carol", who.reason, "cp-node-1"]]);
    await waitFor(async () => (await h.audit("ha.split_brain.resolved")).length === 1, { timeoutMs: 5_000, what: "ha.split_brain.resolved" });
    await waitFor(() => kinds.includes(LeaderEventKind.SPLIT_BRAIN_RESOLVED), { timeoutMs: 5_000, what: "SPLIT_BRAIN_RESOLVED" });
    await stopWatching();
  });

  it("an epoch left open by a crash before close-out is detected and closed by recovery", async () => {
    const { h, admin, rest, stopWatching } = await start(["cp-node-1", "cp-node-2"]);
    await admin.triggerFailover({ ...who, reason: "move to cp-node-2" });
    expect(rest[0]!.isLeader).toBe(true);
    await sql.query(`UPDATE ${h.schema}.leader_epochs SET resigned_at = NULL, end_reason = NULL WHERE cluster_id = $1 AND holder_id = 'cp-node-1'`, [h.clusterId]);
    await waitFor(async () => (await h.audit("ha.split_brain.detected")).length === 1, { timeoutMs: 5_000, what: "detection" });
    const d = await admin.detectSplitBrain({});
    expect(d).toMatchObject({ splitBrainDetected: true, unclosedEpochs: 2, holderMismatch: false });
    expect(d.explanation).toMatch(/2 terms were never closed/);
    const r = await admin.recoverSplitBrain({ ...who, strategy: RecoveryStrategy.PROMOTE_LEADER });
    expect(r.leaderId).toBe("cp-node-2");
    expect(r.message).toMatch(/^stale records cleared; cp-node-2 confirmed as leader for epoch \d+$/);
    await waitFor(async () => !(await admin.detectSplitBrain({})).splitBrainDetected, { timeoutMs: 5_000, what: "detection to clear" });
    const open = await sql.query(`SELECT count(*)::int AS n FROM ${h.schema}.leader_epochs WHERE cluster_id = $1 AND resigned_at IS NULL`, [h.clusterId]);
    expect(open.rows[0].n).toBe(1);
    await stopWatching();
  });

  it("manual-reconcile: everyone resigns and holds, nobody campaigns, until a failover names a node", async () => {
    const { h, first, rest, admin, stopWatching } = await start(["cp-node-1", "cp-node-2", "cp-node-3"]);
    const before = [first, ...rest].map((a) => a.commands.length);
    const r = await admin.recoverSplitBrain({ ...who, strategy: RecoveryStrategy.MANUAL_RECONCILE });
    expect(r).toMatchObject({ success: true, strategy: "manual-reconcile", leaderId: "", resignedNodes: ["cp-node-1"] });
    expect(r.message).toBe("elector state reset; all nodes in standby mode; trigger failover manually");
    expect([first, ...rest].map((a) => a.role)).toEqual(["held", "held", "held"]);
    await waitFor(async () => (await h.leader().getLeader({})).leader?.holderId === "", { timeoutMs: 5_000, what: "no leader" });
    // With no leader there is no write quorum, and status says so rather than vouching for one.
    expect((await admin.getStatus({})).quorum).toMatchObject({ writeReady: false, unknownReason: "no leader" });
    const quietSince = Date.now();
    await waitFor(() => Date.now() - quietSince > 600, { timeoutMs: 2_000, intervalMs: 50, what: "decision cycles to pass" });
    const since = [first, ...rest].flatMap((a, i) => a.commands.slice(before[i]));
    expect(since.map((c) => c.action.kind).sort()).toEqual(["hold", "hold", "resign"]);

    const f = await admin.triggerFailover({ ...who, reason: "post-reconcile: cp-node-3 elected", targetNode: "cp-node-3" });
    expect(f.newHolder).toBe("cp-node-3");
    expect(f.message).toMatch(/^no leader held write authority; cp-node-3 acquired epoch \d+$/);
    // The history credits each side: the reconcile ended cp-node-1's term, the failover opened cp-node-3's.
    const [opened, ended] = (await admin.getHistory({})).epochs;
    expect(opened).toMatchObject({ holderId: "cp-node-3", openedBy: "ha.failover.completed", reason: "post-reconcile: cp-node-3 elected", endedBy: "" });
    expect(ended).toMatchObject({ holderId: "cp-node-1", endedBy: "ha.split_brain.recovered", endActionReason: who.reason });
    await waitFor(() => first.role === "follower" && rest[0]!.role === "follower", { timeoutMs: 5_000, what: "the others released" });
    await stopWatching();
  });

  it("with automatic recovery on, a holder mismatch is repaired by the coordinator itself, audited as operator system", async () => {
    const { h, first, admin, stopWatching } = await start(["cp-node-1", "cp-node-2"], { autoRecoverSplitBrain: true });
    const epoch = first.epoch;
    await sql.query(`UPDATE ${h.schema}.leadership_state SET holder_id = 'cp-node-2' WHERE cluster_id = $1`, [h.clusterId]);
    const [event] = await waitFor(async () => {
      const a = await h.audit("ha.split_brain.recovered");
      return a.length > 0 ? a : undefined;
    }, { timeoutMs: 10_000, what: "automatic recovery" });
    expect(event).toMatchObject({ operator: "system", node_id: "cp-node-1", epoch: epoch + 1 });
    expect(event!.reason).toMatch(/^split-brain detected \(holder_mismatch\); promote cp-node-1/);
    await waitFor(async () => !(await admin.detectSplitBrain({})).splitBrainDetected, { timeoutMs: 5_000, what: "detection to clear" });
    await stopWatching();
  });

  // Last: promoting the standby ends replication for this cluster.
  it("a real split: two agents each hold the lock on a different primary; found unasked, promote-leader resolves it, detection then false", async () => {
    const { h, first, admin, kinds, stopWatching } = await start(["cp-node-1"]);
    // The standby has cp-node-1's term before it is cut loose: the second term opens above it.
    await pg.standby.waitForReplayOf(pg.primary);
    await pg.standby.promote();
    const stale = await h.agent("cp-node-2", { databaseUrl: pg.standby.url() });
    expect(await stale.campaign()).toBe(true);
    expect(stale.epoch).toBe(first.epoch + 1);
    await waitFor(async () => (await h.audit("ha.split_brain.detected")).some((e) => /epoch_divergence/.test(e.message)), { timeoutMs: 5_000, what: "epoch divergence audited" });
    await waitFor(() => kinds.includes(LeaderEventKind.SPLIT_BRAIN_DETECTED), { timeoutMs: 5_000, what: "SPLIT_BRAIN_DETECTED" });
    const d = await admin.detectSplitBrain({});
    expect(d.splitBrainDetected).toBe(true);
    expect(d.epochDivergence).toBe(true);
    const names = d.criteria.filter((c) => c.detected).map((c) => c.name);
    expect(names).toEqual(expect.arrayContaining(["epoch_divergence", "multiple_lock_holders", "multiple_write_ready", "multiple_writable_primaries"]));
    expect(d.criteria[0]!.detail).toBe(`cp-node-1 reports epoch ${first.epoch}; cp-node-2 reports epoch ${stale.epoch}`);
    expect(d.explanation).toMatch(/follow different primaries/);

    // cp-node-2's claim is on a server the coordinator does not read: it is not advised, and not crowned.
    expect(d.explanation).toMatch(/cp-node-2 reports the highest epoch \(\d+\), but its claim is unverified: cp-node-2 claims the lock on database .*, which is not the coordinator's lock database/);
    const refused = await admin.recoverSplitBrain({ ...who, strategy: RecoveryStrategy.PROMOTE_LEADER }).catch((e: unknown) => e);
    expect(String(refused)).toMatch(/failed_precondition.*cannot choose the correct leader: the highest claim is not confirmed by the coordinator's database/i);
    expect(first.role).toBe("leader");
    expect(stale.role).toBe("leader");

    // The claim the coordinator can confirm (cp-node-1 on its own database) is crowned when named.
    const r = await admin.recoverSplitBrain({ ...who, strategy: RecoveryStrategy.PROMOTE_LEADER, targetNode: "cp-node-1" });
    expect(r).toMatchObject({ leaderId: "cp-node-1", resignedNodes: ["cp-node-2"] });
    expect(stale.role).toBe("held");
    await waitFor(async () => !(await admin.detectSplitBrain({})).splitBrainDetected, { timeoutMs: 5_000, what: "detection false after recovery" });
    expect((await h.leader().getLeader({})).leader?.holderId).toBe("cp-node-1");
    expect((await h.audit("ha.split_brain.recovered")).at(-1)).toMatchObject({ operator: "carol", node_id: "cp-node-1" });
    await stopWatching();
  });
});

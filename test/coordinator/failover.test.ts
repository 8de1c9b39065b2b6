import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../core/clock.js";
import { LeaderEventKind } from "../../gen/autonomy/ha/v1/leader_pb.js";
import { RecoveryStrategy } from "../../gen/autonomy/ha/v1/admin_pb.js";
import { startPgCluster, type PgCluster } from "../../pgcluster/index.js";
import { statusText } from "../../cli/output/status.js";
import { Harness } from "./support/harness.js";
import type { ScriptedAgent } from "./support/scripted-agent.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const who = { operator: "alice", reason: "planned maintenance: OS patching on cp-node-1" };

async function rejection(p: Promise<unknown>): Promise<ConnectError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  if (!(err instanceof ConnectError)) throw new Error(`expected a gRPC error, got ${String(err)}`);
  return err;
}

describe("coordinator failover over real gRPC and PostgreSQL", () => {
  let pg: PgCluster;
  let h: Harness | undefined;

  beforeAll(async () => {
    pg = await startPgCluster({ standbys: 0 });
  });
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });
  afterAll(async () => {
    await pg?.close();
  });

  /** Starts the harness with a first agent that the coordinator orders to lead, then the others. */
  async function clusterOf(first: string, others: [string, { priority?: number; nofailover?: boolean }][], policy = {}) {
    h = await new Harness(pg.primary.url(), policy).start();
    const leader = await h.agent(first);
    await waitFor(() => leader.isLeader, { timeoutMs: 10_000, what: `${first} to be ordered to lead` });
    const rest: ScriptedAgent[] = [];
    for (const [id, o] of others) rest.push(await h.agent(id, o));
    const admin = h.admin();
    await waitFor(async () => (await admin.getStatus({})).nodes.length === others.length + 1 && (await admin.getStatus({})).leader?.writeReady, {
      timeoutMs: 10_000,
      what: "every node reported and the leader is Write-Ready",
    });
    return { leader, rest, admin, h };
  }

  it("planned failover: epoch +1, the chosen successor holds it Write-Ready, the old leader is not, and it is audited", async () => {
    const { leader, rest, admin, h } = await clusterOf("cp-node-1", [["cp-node-2", { priority: 5 }], ["cp-node-3", { priority: 1 }]]);
    const before = await admin.getStatus({});
    expect(before.answeredBy).toBe("coordinator");
    expect(before.nodeId).toBe("cp-node-1");
    expect(before.role).toBe("leader");
    const epoch = Number(before.leader!.epoch);

    const r = await admin.triggerFailover({ ...who, expectedLeader: "cp-node-1" });
    expect(r).toMatchObject({ success: true, previousHolder: "cp-node-1", previousEpoch: BigInt(epoch), newHolder: "cp-node-2", newEpoch: BigInt(epoch + 1) });
    expect(r.message).toBe(`leader resigned gracefully; successor cp-node-2 acquired epoch ${epoch + 1}`);
    expect(r.resignedAt).toBeDefined();
    expect(leader.isLeader).toBe(false);
    expect(rest[0]!.isLeader).toBe(true);
    // The successor was queued on the lock before the leader was told to resign.
    const campaign = rest[0]!.commands.find((c) => c.action.kind === "campaign")!;
    const resign = leader.commands.find((c) => c.action.kind === "resign")!;
    expect(campaign.action).toMatchObject({ kind: "campaign", epochFloor: epoch });
    expect(resign).toMatchObject({ epoch });

    const status = await admin.getStatus({});
    expect(status.nodes.find((n) => n.nodeId === "cp-node-1")).toMatchObject({ writeReady: false, sessionLockHeld: false });
    const leaderHealth = await h.json("/v1/health/leader");
    expect(leaderHealth.body).toMatchObject({ holder_id: "cp-node-2", current_epoch: epoch + 1, session_lock_held: true, write_ready: true });
    expect(await h.json("/v1/health/write-ready")).toMatchObject({ status: 200, body: { ready: true, holder_id: "cp-node-2", epoch: epoch + 1 } });
    expect((await h.json("/v1/health/primary")).status).toBe(200);

    const [done] = await h.audit("ha.failover.completed");
    expect(done).toMatchObject({ operator: "alice", reason: who.reason, node_id: "cp-node-2", epoch: epoch + 1, request_id: r.requestId });
    // Without credentials configured the caller is the anonymous principal, never the header the client set.
    expect(done!.caller).toMatch(/^anonymous \(no credentials configured\) \(/);
    const history = await admin.getHistory({});
    expect(history.epochs.slice(0, 2).map((e) => [Number(e.epoch), e.holderId, e.endReason])).toEqual([
      [epoch + 1, "cp-node-2", ""],
      [epoch, "cp-node-1", "resigned"],
    ]);
    // The new term was opened by this failover; the old one was ended by it: the same action, credited on both sides.
    expect(history.epochs[0]).toMatchObject({ openedBy: "ha.failover.completed", operator: "alice", reason: who.reason, endedBy: "" });
    expect(history.epochs[1]).toMatchObject({ endedBy: "ha.failover.completed", endOperator: "alice", endActionReason: who.reason });
    const audit = await admin.queryAudit({ type: "ha.failover.completed" });
    expect(audit.events.map((e) => e.requestId)).toEqual([r.requestId]);
    expect(audit.events[0]!.evidence).toMatchObject({ previous_holder: "cp-node-1", successor: "cp-node-2" });
  });

  it("a successor whose campaign ends without the lock (a hold superseded it) fails the failover at once, with the reason, and audits it", async () => {
    const { rest, admin, h } = await clusterOf("cp-node-1", [["cp-node-2", {}]]);
    const target = rest[0]!;
    target.reply = (c) => (c.action.kind === "campaign" ? { commandId: c.commandId, result: "failed", message: "superseded by hold", epoch: 0, resignedAt: undefined } : undefined);
    const e = await rejection(admin.triggerFailover({ ...who, targetNode: "cp-node-2" }));
    expect([e.code, e.rawMessage]).toEqual([
      Code.FailedPrecondition,
      "precondition not met: failover failed: cp-node-2's campaign ended without the lock (failed: superseded by hold)",
    ]);
    const [failed] = await h.audit("ha.failover.failed");
    expect(failed).toMatchObject({ node_id: "cp-node-2", message: "failover failed: cp-node-2's campaign ended without the lock (failed: superseded by hold)" });
    expect(target.isLeader).toBe(false);
  });

  it("refuses: not the leader, lag critical (unless forced), unknown target, no eligible successor, missing operator", async () => {
    const { leader, rest, admin } = await clusterOf("cp-node-1", [["cp-node-2", {}], ["cp-node-3", { nofailover: true }]]);
    let e = await rejection(admin.triggerFailover({ ...who, expectedLeader: "cp-node-2" }));
    expect(e.code).toBe(Code.FailedPrecondition);
    expect(e.rawMessage).toBe("precondition not met: not the leader; leader is cp-node-1");

    e = await rejection(admin.triggerFailover({ ...who, operator: "" }));
    expect([e.code, e.rawMessage]).toEqual([Code.InvalidArgument, "operator is required (--operator or AUTONOMY_OPERATOR)"]);
    e = await rejection(admin.triggerFailover({ ...who, reason: "  " }));
    expect(e.code).toBe(Code.InvalidArgument);
    e = await rejection(admin.triggerFailover({ ...who, targetNode: "cp-node-9" }));
    expect([e.code, e.rawMessage]).toEqual([Code.NotFound, "target node: unknown node cp-node-9; known nodes: cp-node-1, cp-node-2, cp-node-3"]);
    e = await rejection(admin.triggerFailover({ ...who, targetNode: "no such node!" }));
    expect(e.code).toBe(Code.InvalidArgument);
    e = await rejection(admin.triggerFailover({ ...who, targetNode: "cp-node-3" }));
    expect([e.code, e.rawMessage]).toEqual([Code.FailedPrecondition, "precondition not met: cp-node-3 has nofailover set; it is never a successor"]);
    e = await rejection(admin.recoverSplitBrain({ ...who, strategy: RecoveryStrategy.UNSPECIFIED }));
    expect(e.code).toBe(Code.InvalidArgument);

    leader.overrides = { replication: { lagStatus: "critical", maxReplayLagSeconds: 12.5, maxWriteLagSeconds: 12, replicaCount: 1, syncReplicaCount: 0, replicas: [], error: "" } };
    await leader.report();
    await waitFor(async () => (await h!.json<{ lag_status: string }>("/v1/health/replication")).body.lag_status === "critical", { timeoutMs: 5_000, what: "lag critical to be seen" });
    e = await rejection(admin.triggerFailover(who));
    expect(e.code).toBe(Code.FailedPrecondition);
    expect(e.rawMessage).toMatch(/^precondition not met: replication lag critical; max replay lag 12.5s exceeds 10s on cp-node-1/);
    expect(leader.isLeader).toBe(true);

    const forced = await admin.triggerFailover({ ...who, force: true });
    expect(forced.newHolder).toBe("cp-node-2");
    expect(rest[0]!.isLeader).toBe(true);

    // Now the only other nodes are the old leader (eligible again) and a nofailover node:
    // take the old leader away and nobody is left.
    await leader.crash();
    await waitFor(async () => !(await admin.getStatus({})).nodes.find((n) => n.nodeId === "cp-node-1")!.connected, { timeoutMs: 5_000, what: "cp-node-1 gone" });
    e = await rejection(admin.triggerFailover(who));
    expect(e.code).toBe(Code.FailedPrecondition);
    expect(e.rawMessage).toBe("precondition not met: no eligible successor: cp-node-1 is disconnected; cp-node-3 has nofailover set");
    expect((await h!.audit("ha.failover.completed")).map((x) => x.operator)).toEqual(["alice"]);
  });

  it("automatic failover when the leader crashes: the higher-priority healthy node wins, never the nofailover one", async () => {
    const { leader, rest, admin } = await clusterOf("cp-node-1", [["cp-node-2", { priority: 1 }], ["cp-node-3", { priority: 100, nofailover: true }], ["cp-node-4", { priority: 5 }]]);
    const epoch = Number((await admin.getStatus({})).leader!.epoch);
    await leader.crash();
    await waitFor(() => rest[2]!.isLeader, { timeoutMs: 10_000, what: "cp-node-4 to be ordered to campaign" });
    expect(rest[2]!.epoch).toBe(epoch + 1);
    expect(rest[0]!.isLeader || rest[1]!.isLeader).toBe(false);
    expect(rest[1]!.commands.some((c) => c.action.kind === "campaign")).toBe(false);
    // The audit line is written beside the order, not before it: wait for it.
    const order = await waitFor(async () => (await h!.audit("ha.failover.automatic")).find((x) => x.node_id === "cp-node-4"), {
      timeoutMs: 5_000,
      what: "the automatic failover of cp-node-4 in the audit",
    });
    expect(order).toMatchObject({ operator: "system", node_id: "cp-node-4" });
    expect(order.reason).toMatch(/^the lock is free: order cp-node-4 to campaign above epoch/);
    await waitFor(async () => (await h!.leader().getLeader({})).leader?.holderId === "cp-node-4", { timeoutMs: 5_000, what: "GetLeader to name cp-node-4" });
  });

  it("a slow leader (stream silent, lock session heartbeating) is kept; a hung one (heartbeat frozen too) is terminated and replaced", async () => {
    const { leader, rest, admin } = await clusterOf("cp-node-1", [["cp-node-2", {}]]);
    const epoch = Number((await admin.getStatus({})).leader!.epoch);
    leader.silent = true;
    const silentSince = Date.now();
    // Past the failure timeout (2 s) with the heartbeat still advancing: no failover.
    await waitFor(() => Date.now() - silentSince > 3_000, { timeoutMs: 5_000, intervalMs: 100, what: "the failure timeout to pass" });
    expect(leader.isLeader).toBe(true);
    expect(rest[0]!.commands).toEqual([]);
    const orders = (await h!.audit("ha.failover.automatic")).filter((e) => e.message.startsWith("ordered"));
    expect(orders).toHaveLength(1); // only the initial election
    // Status does not vouch for a node that stopped reporting: its claims are stale, with the age of its last report.
    const during = await admin.getStatus({});
    const row = during.nodes.find((n) => n.nodeId === "cp-node-1")!;
    expect(row).toMatchObject({ stale: true, sessionLockHeld: false, writeReady: false });
    expect(Number(row.lastReportAgeMs)).toBeGreaterThanOrEqual(1_500);
    expect(during.nodes.find((n) => n.nodeId === "cp-node-2")).toMatchObject({ stale: false });
    expect(during).toMatchObject({ nodeId: "cp-node-1", stale: true, sessionLockHeld: false, writeReady: false, quorum: { writeReady: false } });
    expect(during.quorum!.unknownReason).toMatch(/^leader cp-node-1 stopped reporting \d+ms ago$/);
    expect(statusText(during).slice(1, 3)).toEqual([expect.stringMatching(/^Session lock held: {2}stale \d+s$/), expect.stringMatching(/^Write-Ready: {8}stale \d+s$/)]);
    expect(await h!.json("/v1/health/write-ready")).toMatchObject({ status: 200, body: { ready: false, holder_id: "cp-node-1" } });
    expect((await h!.json("/v1/health/primary")).status).toBe(503);
    leader.silent = false;
    await waitFor(async () => (await admin.getStatus({})).nodes.find((n) => n.nodeId === "cp-node-1")!.writeReady, { timeoutMs: 5_000, what: "reports again" });

    leader.frozen = true;
    await waitFor(() => rest[0]!.isLeader, { timeoutMs: 15_000, what: "cp-node-2 to replace the hung leader" });
    expect(rest[0]!.epoch).toBe(epoch + 1);
    const auto = await h!.audit("ha.failover.automatic");
    expect(auto.some((e) => /terminated lock session \d+ of hung leader cp-node-1/.test(e.message))).toBe(true);
    // History: the hung term was ended by the termination, the next opened by the automatic campaign.
    const history = await waitFor(
      async () => {
        const { epochs } = await admin.getHistory({});
        return epochs[0]?.openedBy && epochs[1]?.endedBy ? epochs : undefined;
      },
      { timeoutMs: 5_000, what: "both actions of the automatic failover in the history" },
    );
    expect(history[0]).toMatchObject({ epoch: BigInt(epoch + 1), holderId: "cp-node-2", openedBy: "ha.failover.automatic", operator: "system" });
    expect(history[1]).toMatchObject({ epoch: BigInt(epoch), holderId: "cp-node-1", endedBy: "ha.failover.automatic", endOperator: "system" });
    expect(history[1]!.endActionReason).toMatch(/^leader cp-node-1 \(epoch \d+\) is hung: /);
  });

  it("a designated successor waits on the lock and takes over the moment the leader's session ends", async () => {
    const { leader, rest } = await clusterOf("cp-node-1", [["cp-node-2", { priority: 9 }], ["cp-node-3", {}]], { designateSuccessor: true, designationWaitMs: 20_000 });
    await waitFor(() => rest[0]!.commands.some((c) => c.action.kind === "campaign" && c.action.waitMs > 0), { timeoutMs: 5_000, what: "cp-node-2 to be designated" });
    expect(rest[1]!.commands).toEqual([]);
    await leader.crash();
    await waitFor(() => rest[0]!.isLeader, { timeoutMs: 5_000, what: "the designee to take over" });
    await waitFor(async () => (await h!.audit("ha.failover.automatic")).some((e) => e.message.startsWith("designated successor cp-node-2 acquired epoch")), {
      timeoutMs: 5_000,
      what: "the handover to be audited",
    });
    // The designee's own wait won; no separate campaign was ordered for the crash.
    expect(rest[0]!.commands.filter((c) => c.action.kind === "campaign")).toHaveLength(1);
  });

  it("maintenance mode: no automatic action while paused (audited); resuming lets the coordinator act", async () => {
    const { leader, rest, admin } = await clusterOf("cp-node-1", [["cp-node-2", {}]]);
    const e = await rejection(admin.setMaintenance({ paused: true, operator: "bob", reason: "" }));
    expect(e.code).toBe(Code.InvalidArgument);
    const paused = await admin.setMaintenance({ paused: true, operator: "bob", reason: "database upgrade" });
    expect(paused.paused).toBe(true);
    await leader.crash();
    await waitFor(async () => (await h!.leader().getLeader({})).leader?.holderId === "", { timeoutMs: 5_000, what: "leader lost" });
    const lostAt = Date.now();
    await waitFor(() => Date.now() - lostAt > 1_000, { timeoutMs: 3_000, intervalMs: 100, what: "several decision cycles" });
    expect(rest[0]!.commands).toEqual([]);
    expect((await admin.getStatus({})).maintenance).toBe(true);
    await admin.setMaintenance({ paused: false, operator: "bob", reason: "upgrade done" });
    await waitFor(() => rest[0]!.isLeader, { timeoutMs: 5_000, what: "cp-node-2 elected after resume" });
    expect((await h!.audit()).filter((x) => x.type.startsWith("ha.maintenance")).map((x) => [x.type, x.operator, x.reason])).toEqual([
      ["ha.maintenance.paused", "bob", "database upgrade"],
      ["ha.maintenance.resumed", "bob", "upgrade done"],
    ]);
  });

  it("100 concurrent WatchLeader clients see the same ordered sequence across three failovers", async () => {
    const { admin, h } = await clusterOf("cp-node-1", [["cp-node-2", {}], ["cp-node-3", {}]]);
    const ac = new AbortController();
    const streams = Array.from({ length: 100 }, () => {
      const seen: string[] = [];
      const revisions: number[] = [];
      let snapshot = false;
      const done = (async () => {
        for await (const e of h.leader().watchLeader({}, { signal: ac.signal })) {
          if (e.kind === LeaderEventKind.SNAPSHOT) {
            snapshot = true;
            continue;
          }
          revisions.push(Number(e.revision));
          if (e.kind === LeaderEventKind.LEADER_CHANGED) seen.push(`${e.leader!.holderId}@${e.leader!.epoch}`);
        }
      })().catch(() => undefined);
      return { seen, revisions, done, snapshotSeen: () => snapshot };
    });
    await waitFor(() => streams.every((s) => s.snapshotSeen()), { timeoutMs: 10_000, what: "every watcher's snapshot" });
    for (let i = 0; i < 3; i++) await admin.triggerFailover({ ...who, reason: `rotation ${i}` });
    const final = Number((await admin.getStatus({})).leader!.epoch);
    await waitFor(() => streams.every((s) => s.seen.filter((x) => x.endsWith(`@${final}`)).length === 1), { timeoutMs: 10_000, what: "every watcher to see the third failover" });
    ac.abort();
    await Promise.all(streams.map((s) => s.done));
    const first = streams[0]!;
    expect(first.seen.length).toBeGreaterThanOrEqual(3);
    expect(first.seen.slice(-3).map((x) => Number(x.split("@")[1]))).toEqual([final - 2, final - 1, final]);
    for (const s of streams) {
      expect(s.seen).toEqual(first.seen);
      expect(s.revisions).toEqual(first.revisions);
      expect(s.revisions.every((r, i) => i === 0 || r === s.revisions[i - 1]! + 1)).toBe(true);
    }
  });

  it("hostile input over the wire: absurd values and foreign clusters change nothing, unknown acks are ignored, oversized messages refused", async () => {
    h = await new Harness(pg.primary.url()).start();
    const admin = h.admin();
    const node = async (id: string) => (await admin.getStatus({})).nodes.find((n) => n.nodeId === id);

    // An absurd epoch ends the node's session; the report is not applied.
    const bad = await h.agent("cp-node-6");
    await waitFor(async () => (await node("cp-node-6"))?.connected, { timeoutMs: 5_000, what: "cp-node-6 known" });
    bad.overrides = { epoch: 2 ** 60, highestEpochSeen: 2 ** 60 };
    await bad.report();
    await waitFor(async () => (await node("cp-node-6"))?.connected === false, { timeoutMs: 5_000, what: "cp-node-6's stream ended" });
    expect(Number((await node("cp-node-6"))!.epoch)).toBeLessThan(1000);
    expect(Number((await admin.getStatus({})).leader!.epoch)).toBeLessThan(1000);

    // A negative lag likewise.
    const nan = await h.agent("cp-node-7");
    await waitFor(async () => (await node("cp-node-7"))?.connected, { timeoutMs: 5_000, what: "cp-node-7 known" });
    nan.overrides = { localDatabase: { reachable: true, inRecovery: true, timeline: 1, receiveLsn: "", replayLsn: "", replayLagSeconds: -5, lagStatus: "ok", systemIdentifier: "1", streaming: true, error: "" } };
    await nan.report();
    await waitFor(async () => (await node("cp-node-7"))?.connected === false, { timeoutMs: 5_000, what: "cp-node-7's stream ended" });
    expect((await node("cp-node-7"))!.replayLagSeconds).toBe(0);

    // An agent of another cluster never becomes part of this one.
    const stranger = await h.agent("cp-node-8", { clusterId: "someone-else" });
    const good = await h.agent("cp-node-9");
    await waitFor(async () => (await node("cp-node-9"))?.connected, { timeoutMs: 5_000, what: "cp-node-9 known" });
    await stranger.report();
    expect(await node("cp-node-8")).toBeUndefined();

    // An ack for a command never sent is ignored; the stream stays up.
    await good.send({ message: { case: "ack", value: { commandId: "no-such-command", result: 1 } } });
    good.overrides = { priority: 42 };
    await good.report();
    await waitFor(async () => (await node("cp-node-9"))?.priority === 42, { timeoutMs: 5_000, what: "cp-node-9's next report" });
    expect((await node("cp-node-9"))!.connected).toBe(true);

    // A message over the server's limit is refused by the transport.
    const huge = await h.agent("cp-node-10");
    huge.overrides = { version: "x".repeat(2 * 1024 * 1024) };
    await huge.report();
    await waitFor(() => huge.error, { timeoutMs: 5_000, what: "oversized message refused" });
    expect((huge.error as ConnectError).code).toBe(Code.ResourceExhausted);

    const unknown = await rejection(admin.getStatus({ nodeId: "cp-node-404" }));
    expect(unknown.code).toBe(Code.NotFound);
    const cluster = await rejection(admin.getStatus({ clusterId: "nope" }));
    expect(cluster.code).toBe(Code.NotFound);
  });

  it("serves health, readiness and Prometheus metrics on the same port", async () => {
    const { h } = await clusterOf("cp-node-1", [["cp-node-2", {}]]);
    expect((await h.json("/healthz")).status).toBe(200);
    expect((await h.json("/readyz")).body).toMatchObject({ ready: true });
    const repl = await h.json("/v1/health/replication");
    expect(repl.body).toMatchObject({ holder_id: "cp-node-1", lag_status: "ok", max_replay_lag: "10ms", max_write_lag: "5ms", replicas: 1 });
    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`autonomy_ha_leader\\{cluster_id="${h.clusterId}",node_id="cp-node-1"\\} 1`));
    expect(metrics).toMatch(/autonomy_ha_split_brain\{[^}]*\} 0/);
    expect(metrics).toMatch(/autonomy_ha_failovers_total\{[^}]*kind="automatic"\} 1/);
    expect(metrics).toMatch(/autonomy_ha_node_replay_lag_seconds\{[^}]*node_id="cp-node-2"\} 0/);
  });

  it("`autonomy coordinator` runs as a child process and stops cleanly on SIGTERM; an unreachable database is one line and exit 1", async () => {
    const bin = path.join(root, "bin", "autonomy.js");
    const audit = await mkdtemp(path.join(os.tmpdir(), "autonomy-coord-cli-"));
    const child = spawn(process.execPath, [bin, "coordinator", "--database-url", pg.primary.url(), "--listen", "127.0.0.1:0", "--audit-dir", audit, "--schema", `cli_${process.pid}`, "--log-level", "info"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (b: Buffer) => (out += b.toString()));
    // stdout is JSON log lines only (a plain-text line fails JSON.parse here); one says where it listens.
    const logLines = () => out.split("\n").slice(0, -1).map((l) => JSON.parse(l) as { msg: string; url?: string });
    const url = await waitFor(() => logLines().find((l) => l.msg.startsWith("coordinator listening on"))?.url, { timeoutMs: 20_000, what: "the coordinator to listen" });
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    child.kill("SIGTERM");
    expect(await exited).toBe(0);

    const bad = spawn(process.execPath, [bin, "coordinator", "--database-url", "postgres://x@127.0.0.1:1/db", "--listen", "127.0.0.1:0", "--audit-dir", audit], { stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    bad.stderr.on("data", (b: Buffer) => (err += b.toString()));
    const code = await new Promise<number | null>((resolve) => bad.once("exit", (c) => resolve(c)));
    expect(code).toBe(1);
    expect(err.trim().split("\n")).toEqual([expect.stringMatching(/^autonomy: cannot use the lock database postgres:\/\/x@127.0.0.1:1\/db: .*ECONNREFUSED/)]);
    await rm(audit, { recursive: true, force: true });
  });
});

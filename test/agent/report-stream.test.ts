import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LeaderEventKind, LeaderService } from "../../gen/autonomy/ha/v1/leader_pb.js";
import { startPgCluster, type PgCluster } from "../../pgcluster/index.js";
import { waitFor } from "../../core/clock.js";
import { clientFor } from "../../rpc/client.js";
import { AgentProcess } from "../support/agents.js";
import { ScriptedCoordinator } from "../support/scripted-coordinator.js";
import { getJson } from "../support/processes.js";

describe("the agent's report stream and command handling", () => {
  let cluster: PgCluster;
  let coordinator: ScriptedCoordinator;
  let agent: AgentProcess;

  beforeAll(async () => {
    cluster = await startPgCluster({ standbys: 0 });
    coordinator = new ScriptedCoordinator();
    await coordinator.start();
    agent = await AgentProcess.start({ nodeId: "cp-node-1", databaseUrl: cluster.primary.url(), coordinatorUrl: coordinator.server.url, priority: 150 });
  });
  afterAll(async () => {
    await agent?.process.stop();
    await coordinator?.server.close();
    await cluster?.close();
  });

  it("reports with the node id from metadata, rising sequence numbers, and the leader's state", async () => {
    const report = await waitFor(() => coordinator.reports.find((r) => r.role === "leader" && r.writeReady), { timeoutMs: 10_000, what: "a leader report" });
    expect(report).toMatchObject({ nodeId: "cp-node-1", clusterId: "default", sessionLockHeld: true, epoch: 1, priority: 150, nofailover: false });
    expect(report.observedLeader).toMatchObject({ holderId: "cp-node-1", epoch: 1 });
    expect(report.endpoint).toBe(agent.url);
    const sequences = coordinator.reports.map((r) => r.sequence);
    expect(sequences).toEqual([...sequences].sort((a, b) => a - b));
    expect(new Set(sequences).size).toBe(sequences.length);
  });

  it("refuses a command for a wrong epoch and changes nothing", async () => {
    const ack = await coordinator.command({ commandId: "c-wrong-epoch", epoch: 99, action: { kind: "resign", hold: false }, reason: "test" });
    expect(ack).toMatchObject({ result: "refused" });
    expect(ack.message).toMatch(/epoch guard: command is for epoch 99, current epoch is 1/);
    expect((await agent.writeReady())?.ready).toBe(true);
  });

  it("refuses a command without an action, ignores one without an id, and keeps reporting", async () => {
    coordinator.send({ message: { case: "command", value: { commandId: "c-no-action", epoch: 1n } } });
    coordinator.send({ message: { case: "command", value: { commandId: "", epoch: 1n, action: { case: "hold", value: {} } } } });
    const ack = await waitFor(() => coordinator.acks.find((a) => a.commandId === "c-no-action"), { timeoutMs: 10_000, what: "ack" });
    expect(ack).toMatchObject({ result: "refused", message: "command c-no-action has no action" });
    const before = coordinator.reports.length;
    await waitFor(() => coordinator.reports.length > before + 1, { timeoutMs: 5_000, what: "more reports" });
    expect(coordinator.acks.some((a) => a.commandId === "")).toBe(false);
    expect(coordinator.latest()?.role).toBe("leader");
  });

  it("resigns with hold on command, then campaigns again for epoch 2; WatchLeader sees every change in order", async () => {
    const leaders = clientFor(LeaderService, agent.url);
    const watch = new AbortController();
    const events: { kind: LeaderEventKind; holder: string; epoch: number; revision: number }[] = [];
    const watching = (async () => {
      for await (const e of leaders.watchLeader({}, { signal: watch.signal })) {
        events.push({ kind: e.kind, holder: e.leader?.holderId ?? "", epoch: Number(e.leader?.epoch ?? 0n), revision: Number(e.revision) });
      }
    })().catch(() => undefined);
    await waitFor(() => events.length > 0, { timeoutMs: 5_000, what: "snapshot" });

    const resign = await coordinator.command({ commandId: "c-resign", epoch: 1, action: { kind: "resign", hold: true }, reason: "planned" });
    expect(resign).toMatchObject({ result: "done", epoch: 0 });
    expect(resign.resignedAt).toBeInstanceOf(Date);
    const [row] = await cluster.primary.query<{ end_reason: string }>("SELECT end_reason FROM leader_epochs WHERE epoch = 1");
    expect(row?.end_reason).toBe("resigned");
    await waitFor(() => coordinator.latest()?.role === "held", { timeoutMs: 5_000, what: "held report" });
    expect(await agent.writeReady()).toEqual({ status: 200, ready: false });
    expect((await getJson(`${agent.url}/v1/health/primary`))?.status).toBe(503);
    expect(await getJson(`${agent.url}/v1/health/replica`)).toMatchObject({ status: 200, body: { replica: true, role: "held" } });
    // Held: the free lock is not taken.
    expect(await cluster.primary.query("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted")).toHaveLength(0);

    const campaign = await coordinator.command({ commandId: "c-campaign", epoch: 1, action: { kind: "campaign", epochFloor: 5, waitMs: 0 }, reason: "post-reconcile" });
    expect(campaign).toMatchObject({ result: "done", epoch: 6 });
    await waitFor(async () => (await agent.writeReady())?.ready, { timeoutMs: 5_000, what: "write-ready again" });
    await waitFor(() => events.some((e) => e.epoch === 6 && e.kind === LeaderEventKind.LEADER_CHANGED), { timeoutMs: 5_000, what: "epoch 6 event" });
    watch.abort();
    await watching;
    expect(events[0]?.kind).toBe(LeaderEventKind.SNAPSHOT);
    expect(events.map((e) => e.revision)).toEqual(events.map((_, i) => events[0]!.revision + i));
    expect(events.map((e) => e.kind)).toEqual(
      expect.arrayContaining([LeaderEventKind.SNAPSHOT, LeaderEventKind.LEADER_LOST, LeaderEventKind.LEADER_CHANGED]),
    );
  });

  it("a designated successor waits on the lock and wins the moment the leader resigns; release cancels a wait", async () => {
    const second = await AgentProcess.start({ nodeId: "cp-node-2", databaseUrl: cluster.primary.url(), coordinatorUrl: coordinator.server.url });
    try {
      await waitFor(() => coordinator.reports.some((r) => r.nodeId === "cp-node-2" && r.role === "follower"), { timeoutMs: 10_000, what: "cp-node-2 report" });
      // A wait that is released ends as failed; the release itself is done.
      const waiting = coordinator.command({ commandId: "c-wait-1", epoch: 6, action: { kind: "campaign", epochFloor: 6, waitMs: 30_000 }, reason: "designate" }, "cp-node-2");
      const release = await coordinator.command({ commandId: "c-release", epoch: 6, action: { kind: "release" }, reason: "someone else is preferred" }, "cp-node-2");
      expect(release).toMatchObject({ result: "done" });
      expect(await waiting).toMatchObject({ result: "failed", message: "superseded by release" });

      const successor = coordinator.command({ commandId: "c-wait-2", epoch: 6, action: { kind: "campaign", epochFloor: 6, waitMs: 30_000 }, reason: "planned" }, "cp-node-2");
      await waitFor(
        async () => (await cluster.primary.query("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")).length === 1,
        { timeoutMs: 5_000, what: "cp-node-2 queued on the lock" },
      );
      const resign = await coordinator.command({ commandId: "c-resign-2", epoch: 6, action: { kind: "resign", hold: false }, reason: "planned" });
      expect(resign).toMatchObject({ result: "done" });
      expect(await successor).toMatchObject({ result: "done", epoch: 7 });
      await waitFor(async () => (await second.writeReady())?.ready, { timeoutMs: 5_000, what: "cp-node-2 Write-Ready" });
      expect(await agent.writeReady()).toEqual({ status: 200, ready: false });
      // Hand the lock back so the endpoint checks below see cp-node-1 as leader.
      const back = coordinator.command({ commandId: "c-wait-3", epoch: 7, action: { kind: "campaign", epochFloor: 7, waitMs: 30_000 }, reason: "back" });
      await waitFor(
        async () => (await cluster.primary.query("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")).length === 1,
        { timeoutMs: 5_000, what: "cp-node-1 queued on the lock" },
      );
      await second.process.stop();
      expect(await back).toMatchObject({ result: "done", epoch: 8 });
    } finally {
      await second.process.stop();
    }
  });

  it("answers the runbook's endpoints with their field names and status codes, and refuses bad requests", async () => {
    const leader = await getJson(`${agent.url}/v1/health/leader`);
    expect(leader?.status).toBe(200);
    expect(leader?.body).toMatchObject({ holder_id: "cp-node-1", current_epoch: 8, session_lock_held: true });
    const ready = await getJson(`${agent.url}/v1/health/write-ready`);
    expect(ready).toEqual({ status: 200, body: { ready: true, node_id: "cp-node-1", role: "leader", epoch: 8 } });
    expect((await getJson(`${agent.url}/v1/health/primary`))?.status).toBe(200);
    expect(await getJson(`${agent.url}/v1/health/replica`)).toMatchObject({ status: 503, body: { replica: false, reason: "this node is the leader" } });
    expect((await getJson(`${agent.url}/healthz`))?.status).toBe(200);
    expect((await getJson(`${agent.url}/readyz`))?.status).toBe(200);
    const metrics = await (await fetch(`${agent.url}/metrics`)).text();
    expect(metrics).toMatch(/autonomy_agent_epoch\{node_id="cp-node-1",cluster_id="default"\} 8/);
    expect(metrics).toMatch(/autonomy_agent_write_ready\{node_id="cp-node-1",cluster_id="default"\} 1/);
    expect((await getJson(`${agent.url}/v1/health/nope`))?.status).toBe(404);
    const post = await fetch(`${agent.url}/v1/health/leader`, { method: "POST", body: "{not json", headers: { "content-type": "application/json" } });
    expect(post.status).toBe(405);
    const huge = await fetch(`${agent.url}/v1/health/leader`, { method: "POST", body: "x".repeat(200_000) });
    expect(huge.status).toBe(405);
    expect((await agent.writeReady())?.ready).toBe(true);
  });
});

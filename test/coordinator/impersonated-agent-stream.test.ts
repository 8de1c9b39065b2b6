import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import pgLib from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ManualClock, waitFor } from "../../core/clock.js";
import { HaError } from "../../core/errors.js";
import { silentLogger } from "../../core/log.js";
import { ConnectRequestSchema, type ConnectRequest } from "../../gen/autonomy/ha/v1/agent_pb.js";
import { NodeSessions } from "../../coordinator/live/node-sessions.js";
import { Outbox } from "../../coordinator/live/outbox.js";
import { makePolicy } from "../../coordinator/config.js";
import type { AuditInput } from "../../coordinator/audit/audit-log.js";
import { report } from "../../coordinator/view/builders.js";
import { anonymousPrincipal, type Principal } from "../../rpc/auth/principal.js";
import { reportToWire } from "../../rpc/wire.js";
import { startPgCluster, type PgCluster } from "../../pgcluster/index.js";
import { Harness } from "./support/harness.js";
import { openRawStream, reportMessage } from "./support/scripted-agent.js";

const cert = (nodeId: string | undefined, roles: Principal["roles"] = new Set(["agent"])): Principal => ({
  kind: "certificate",
  name: `cert:CN=${nodeId ?? "someone"}`,
  roles,
  nodeId,
});

function sessionsUnderTest(limits: Partial<Parameters<typeof makePolicy>[0]> = {}) {
  const clock = new ManualClock();
  const audited: AuditInput[] = [];
  const policy = makePolicy({ reportStaleAfterMs: 3_000, failureTimeoutMs: 30_000, nodeExpiryMs: 60_000, ...limits });
  const sessions = new NodeSessions("default", clock, silentLogger(), {
    limits: policy,
    events: { report: () => undefined, connection: () => undefined, audit: (a) => audited.push(a) },
  });
  const open = (nodeId: string, principal: Principal = anonymousPrincipal) => {
    const requests = new Outbox<ConnectRequest>();
    const metadata = new Map([["x-autonomy-node-id", nodeId]]);
    const responses = sessions.connect(requests, { metadata, peer: `peer-of-${nodeId}`, signal: new AbortController().signal, principal })[Symbol.asyncIterator]();
    const first = responses.next();
    return { requests, first };
  };
  const reportMsg = (nodeId: string, sequence = 1) =>
    create(ConnectRequestSchema, { message: { case: "report", value: reportToWire(report(nodeId, { sequence })) } });
  const settle = () => new Promise((r) => setImmediate(r));
  return { clock, audited, sessions, open, reportMsg, settle };
}

describe("agent streams are bound to who the caller proved to be", () => {
  const token = (nodeId: string): Principal => ({ kind: "token", name: `token:${nodeId}`, roles: new Set(["read", "agent"]), nodeId });
  it.each([
    ["certificate", cert],
    ["token", token],
  ] as const)("an agent %s for cp-node-1 cannot open a stream as cp-node-2; the view and the audit do not change", async (kind, credential) => {
    const { sessions, audited, open, reportMsg, settle } = sessionsUnderTest();
    const good = open("cp-node-1", credential("cp-node-1"));
    good.requests.push(reportMsg("cp-node-1"));
    await settle();
    const before = sessions.nodes();

    const rogue = open("cp-node-2", credential("cp-node-1"));
    rogue.requests.push(reportMsg("cp-node-2"));
    const err = (await rogue.first.catch((e: unknown) => e)) as HaError;
    expect(err).toBeInstanceOf(HaError);
    expect(err.code).toBe("permission_denied");
    expect(err.message).toBe(`stream names node cp-node-2 but its ${kind} names cp-node-1`);
    await settle();
    expect(sessions.nodes()).toEqual(before);
    expect(sessions.isConnected("cp-node-2")).toBe(false);
    expect(audited).toEqual([]);
  });

  it("a caller without the agent role may not open an agent stream; anonymous (no credentials configured) still may", async () => {
    const { sessions, open, reportMsg, settle } = sessionsUnderTest();
    const reader = open("cp-node-1", { kind: "token", name: "token:dashboard", roles: new Set(["read"]), nodeId: undefined });
    const err = (await reader.first.catch((e: unknown) => e)) as HaError;
    expect(err.code).toBe("permission_denied");
    expect(err.message).toMatch(/token:dashboard may not open an agent stream: it lacks the agent role/);
    expect(sessions.nodes()).toEqual([]);

    const anon = open("cp-node-1");
    anon.requests.push(reportMsg("cp-node-1"));
    await settle();
    expect(sessions.node("cp-node-1")).toMatchObject({ connected: true });
  });

  it("new node ids beyond max-nodes are refused; silent nodes expire from the view, audited", async () => {
    const { clock, sessions, audited, open, reportMsg, settle } = sessionsUnderTest({ maxNodes: 2 });
    for (const id of ["cp-node-1", "rogue-1"]) {
      const s = open(id);
      s.requests.push(reportMsg(id));
      s.requests.close();
    }
    await settle();
    const third = open("rogue-2");
    const err = (await third.first.catch((e: unknown) => e)) as HaError;
    expect(err.code).toBe("unavailable");
    expect(err.message).toMatch(/^resource limit: this coordinator already knows 2 nodes \(max-nodes 2\); node rogue-2 is refused/);
    expect(sessions.nodes().map((n) => n.nodeId).sort()).toEqual(["cp-node-1", "rogue-1"]);

    // A known id may always come back; expiry frees the slots.
    clock.advance(60_001);
    expect(sessions.expire(clock.monotonicMs()).sort()).toEqual(["cp-node-1", "rogue-1"]);
    expect(sessions.nodes()).toEqual([]);
    expect(audited.map((a) => `${a.type} ${a.node_id}`).sort()).toEqual(["ha.node.expired cp-node-1", "ha.node.expired rogue-1"]);
    expect(audited[0]!.message).toMatch(/left the view: no report for 60001ms \(node expiry 60000ms\)/);
    const again = open("rogue-2");
    again.requests.push(reportMsg("rogue-2"));
    await settle();
    expect(sessions.node("rogue-2")).toMatchObject({ connected: true });
  });

  it("an open stream that never reports is ended at the node expiry", async () => {
    const { clock, sessions, open } = sessionsUnderTest();
    const silent = open("rogue-1");
    await new Promise((r) => setImmediate(r));
    expect(sessions.isConnected("rogue-1")).toBe(true);
    clock.advance(60_001);
    sessions.expire(clock.monotonicMs());
    const err = (await silent.first.catch((e: unknown) => e)) as HaError;
    expect(err.code).toBe("deadline_exceeded");
    expect(sessions.isConnected("rogue-1")).toBe(false);
  });
});

describe("over real gRPC and PostgreSQL: a second stream for a live node, and rejected reports", () => {
  let pg: PgCluster;
  let sql: pgLib.Client;
  let h: Harness | undefined;

  beforeAll(async () => {
    pg = await startPgCluster({ standbys: 0 });
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

  const dbState = async (harness: Harness) => ({
    leadership: (await sql.query(`SELECT holder_id, epoch, acquired_at FROM ${harness.schema}.leadership_state WHERE cluster_id = $1`, [harness.clusterId])).rows,
    epochs: (await sql.query(`SELECT epoch, holder_id, resigned_at FROM ${harness.schema}.leader_epochs WHERE cluster_id = $1 ORDER BY epoch`, [harness.clusterId])).rows,
  });

  it("a rogue reconnecting as the leader's node id is refused with ABORTED and audited; write-ready never flips", async () => {
    h = await new Harness(pg.primary.url()).start();
    const leader = await h.agent("cp-node-1");
    await leader.campaign();
    await h.agent("cp-node-2");
    await waitFor(async () => (await h!.json("/v1/health/primary")).status === 200, { timeoutMs: 10_000, what: "cp-node-1 Write-Ready" });
    const before = await dbState(h);
    const auditBefore = (await h.audit()).length;

    const observed: number[] = [];
    const rogues = [];
    for (let i = 0; i < 3; i++) {
      const rogue = openRawStream(h.url, "cp-node-1");
      rogue.send(reportMessage("cp-node-1", h.clusterId, { sequence: 1 }));
      const err = await rogue.ended;
      expect(err).toBeInstanceOf(ConnectError);
      expect((err as ConnectError).code).toBe(Code.Aborted);
      expect((err as ConnectError).rawMessage).toMatch(/^node cp-node-1 already has a live stream \(from .+, last report \d+ms ago\); a second stream is refused/);
      observed.push((await h.json("/v1/health/primary")).status);
      rogues.push(rogue);
    }
    expect(observed).toEqual([200, 200, 200]);
    const refusals = await waitFor(async () => {
      const a = await h!.audit("ha.node.stream_refused");
      return a.length === 3 ? a : undefined;
    }, { timeoutMs: 5_000, what: "three audited refusals" });
    expect(refusals[0]).toMatchObject({ node_id: "cp-node-1", evidence: { principal: anonymousPrincipal.name } });
    expect(await dbState(h)).toEqual(before);
    const status = await h.admin().getStatus({});
    expect(status.nodes.find((n) => n.nodeId === "cp-node-1")).toMatchObject({ connected: true, sessionLockHeld: true, writeReady: true });
    expect(status.leader?.holderId).toBe("cp-node-1");
    // Nothing but the refusals was audited meanwhile.
    expect((await h.audit()).length).toBe(auditBefore + 3);
    // The real agent's stream is untouched.
    expect(leader.error).toBeUndefined();
  });

  it("a genuine reconnect replaces a stream that went silent", async () => {
    h = await new Harness(pg.primary.url()).start();
    const agent = await h.agent("cp-node-1");
    await agent.campaign();
    agent.silent = true; // a half-open connection: the transport never told us
    // Refused while the old stream is still within report-stale-after, accepted after.
    await waitFor(async () => {
      const s = openRawStream(h!.url, "cp-node-1");
      s.send(reportMessage("cp-node-1", h!.clusterId, { sequence: 1 }));
      const probe = await Promise.race([s.ended, new Promise((r) => setTimeout(r, 300, "open"))]);
      s.close();
      return probe === "open" || undefined;
    }, { timeoutMs: 10_000, intervalMs: 100, what: "a reconnect accepted once the old stream is silent" });
    expect(agent.error).toBeInstanceOf(ConnectError);
    expect((agent.error as ConnectError).code).toBe(Code.Aborted);
    expect((agent.error as ConnectError).rawMessage).toMatch(/stream replaced by a newer stream of cp-node-1/);
  });

  it("a rejected report ends the stream with a status the client sees: INVALID_ARGUMENT, FAILED_PRECONDITION", async () => {
    h = await new Harness(pg.primary.url()).start();
    const absurd = openRawStream(h.url, "cp-node-7");
    absurd.send(reportMessage("cp-node-7", h.clusterId, { sequence: 1, epoch: 2 ** 60 }));
    const e1 = (await absurd.ended) as ConnectError;
    expect(e1).toBeInstanceOf(ConnectError);
    expect(e1.code).toBe(Code.InvalidArgument);
    expect(e1.rawMessage).toMatch(/^report from cp-node-7 rejected: epoch \d+ is out of range/);

    const foreign = openRawStream(h.url, "cp-node-8");
    foreign.send(reportMessage("cp-node-8", "some-other-cluster", { sequence: 1 }));
    const e2 = (await foreign.ended) as ConnectError;
    expect(e2.code).toBe(Code.FailedPrecondition);
    expect(e2.rawMessage).toBe(`node cp-node-8 reports cluster "some-other-cluster"; this coordinator serves cluster "${h.clusterId}"`);

    const status = await h.admin().getStatus({});
    expect(status.nodes).toEqual([]);
    expect(await h.audit()).toEqual([]);
  });
});

import * as grpc from "@grpc/grpc-js";
import http from "node:http";
import { create } from "@bufbuild/protobuf";
import { createWritableIterable } from "@connectrpc/connect/protocol";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../core/clock.js";
import { NODE_ID_HEADER } from "../../core/metadata.js";
import { report } from "../../coordinator/view/builders.js";
import { AgentService, ConnectRequestSchema, type ConnectRequest } from "../../gen/autonomy/ha/v1/agent_pb.js";
import { NodeRole, type LagStatus } from "../../gen/autonomy/ha/v1/types_pb.js";
import { startPgCluster, type PgCluster } from "../../pgcluster/index.js";
import { clientFor } from "../../rpc/client.js";
import { reportToWire } from "../../rpc/wire.js";
import { Harness } from "../coordinator/support/harness.js";

/** Bytes that are no protobuf message: a field with wire type 7, which does not exist. */
const GARBAGE = Buffer.from([0x0f, 0xff, 0xff, 0xff]);
const raw = (b: Buffer) => b;

let cluster: PgCluster;
let h: Harness;
let target: string;

beforeAll(async () => {
  cluster = await startPgCluster({ standbys: 0 });
  h = await new Harness(cluster.primary.url()).start();
  target = new URL(h.url).host;
});
afterAll(async () => {
  await h?.close();
  await cluster?.close();
});

function grpcClient(): grpc.Client {
  return new grpc.Client(target, grpc.credentials.createInsecure());
}

describe("malformed protobuf is INVALID_ARGUMENT, not INTERNAL, on every kind of method", () => {
  it("unary: HaAdminService/GetStatus", async () => {
    const client = grpcClient();
    const err = await new Promise<grpc.ServiceError>((resolve, reject) =>
      client.makeUnaryRequest("/autonomy.ha.v1.HaAdminService/GetStatus", raw, raw, GARBAGE, (e) => (e ? resolve(e) : reject(new Error("answered garbage")))),
    );
    client.close();
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/^malformed autonomy\.ha\.v1\.GetStatusRequest message: /);
  });

  it("server streaming: LeaderService/WatchLeader", async () => {
    const client = grpcClient();
    const stream = client.makeServerStreamRequest("/autonomy.ha.v1.LeaderService/WatchLeader", raw, raw, GARBAGE);
    const err = await new Promise<grpc.ServiceError>((resolve) => stream.on("error", resolve));
    client.close();
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/malformed autonomy\.ha\.v1\.WatchLeaderRequest message/);
  });

  it("bidi streaming: AgentService/Connect", async () => {
    const client = grpcClient();
    const metadata = new grpc.Metadata();
    metadata.set(NODE_ID_HEADER, "cp-node-garbage");
    const stream = client.makeBidiStreamRequest("/autonomy.ha.v1.AgentService/Connect", raw, raw, metadata);
    stream.on("data", () => undefined);
    const err = new Promise<grpc.ServiceError>((resolve) => stream.on("error", resolve));
    stream.write(GARBAGE);
    const e = await err;
    client.close();
    expect(e.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(e.details).toMatch(/malformed autonomy\.ha\.v1\.ConnectRequest message/);
    expect((await h.admin().getStatus({})).nodes.map((n) => n.nodeId)).not.toContain("cp-node-garbage");
  });
});

describe("enums and numbers outside what any agent sends are refused and change nothing", () => {
  /** Opens an agent stream for `nodeId`, sends its messages, and resolves with how the coordinator ended it. */
  function stream(nodeId: string) {
    const requests = createWritableIterable<ConnectRequest>();
    const client = clientFor(AgentService, h.url, { metadata: { [NODE_ID_HEADER]: nodeId } });
    const ended = (async () => {
      try {
        for await (const _ of client.connect(requests)) void _;
        return undefined;
      } catch (err) {
        return err;
      }
    })();
    return { requests, ended };
  }
  const reportOf = (nodeId: string, sequence: number, mutate: (r: ReturnType<typeof reportToWire>) => void = () => undefined) => {
    const wire = reportToWire(report(nodeId, { clusterId: h.clusterId, sequence, priority: 5, role: "follower" }));
    mutate(wire);
    return create(ConnectRequestSchema, { message: { case: "report", value: wire } });
  };

  it.each([
    { name: "role 99", mutate: (r: ReturnType<typeof reportToWire>) => (r.role = 99 as NodeRole), message: /^role: unknown value 99; allowed: 0 \(UNSPECIFIED\), 1 \(LEADER\), 2 \(FOLLOWER\)/ },
    { name: "replication lag status 42", mutate: (r: ReturnType<typeof reportToWire>) => (r.replication!.lagStatus = 42 as LagStatus), message: /^replication\.lag_status: unknown value 42; allowed: .*3 \(CRITICAL\)/ },
    { name: "negative priority", mutate: (r: ReturnType<typeof reportToWire>) => (r.priority = -5), message: /^priority: -5 is negative; allowed: 0 or more/ },
  ])("$name: INVALID_ARGUMENT naming the field, the node's view unchanged", async ({ mutate, message }) => {
    const nodeId = `cp-hostile-${Math.random().toString(36).slice(2, 8)}`;
    const s = stream(nodeId);
    await s.requests.write(reportOf(nodeId, 1));
    const admin = h.admin();
    await waitFor(async () => (await admin.getStatus({})).nodes.some((n) => n.nodeId === nodeId), { timeoutMs: 5_000, what: `${nodeId} to be seen` });
    const before = (await admin.getStatus({})).nodes.find((n) => n.nodeId === nodeId)!;

    await s.requests.write(reportOf(nodeId, 2, mutate)).catch(() => undefined);
    const err = await s.ended;
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.InvalidArgument);
    expect((err as ConnectError).rawMessage).toMatch(message);

    const after = (await admin.getStatus({})).nodes.find((n) => n.nodeId === nodeId)!;
    // What the node last reported stands; only the connection is gone.
    // What the node reported is unchanged; what the coordinator observes of its stream (connected, stale, age) is not.
    const reported = ({ connected: _c, role: _r, stale: _s, lastReportAgeMs: _a, ...rest }: typeof after) => rest;
    expect(reported(after)).toEqual(reported(before));
    expect(after.connected).toBe(false);
    expect(after.stale).toBe(true);
    expect(after.priority).toBe(5);
  });
});

/** A request as a client sends it, the target byte for byte (fetch would normalise it). */
function get(pathAndQuery: string): Promise<{ status: number; body: unknown }> {
  const { hostname, port } = new URL(h.url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: hostname, port, path: pathAndQuery, method: "GET" }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("bad URLs answer 400 with what was wrong", () => {
  it.each([
    { target: "//%zz", error: /malformed percent-encoding in the path/ },
    { target: "/v1/health/%zz", error: /malformed percent-encoding in the path/ },
    { target: "/v1/health/%c3%28", error: /malformed percent-encoding in the path/ },
    { target: "/v1/health/leader?x=%e0%a4%a", error: /malformed percent-encoding in the query/ },
    { target: `/${"a".repeat(5000)}`, error: /request target is 5001 characters long; at most 2048/ },
  ])("GET $target", async ({ target: t, error }) => {
    const r = await get(t);
    expect(r.status).toBe(400);
    expect((r.body as { error: string }).error).toMatch(error);
  });

  it("a good URL still answers", async () => {
    expect((await get("/v1/health/leader")).status).toBeLessThan(500);
    expect((await get("/no/such/path")).status).toBe(404);
  });
});

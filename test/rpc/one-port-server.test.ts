import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createWritableIterable } from "@connectrpc/connect/protocol";
import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { ServerReflection } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { Health, HealthCheckResponse_ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";
import { LeaderService } from "../../gen/autonomy/ha/v1/leader_pb.js";
import { AgentService } from "../../gen/autonomy/ha/v1/agent_pb.js";
import { HaAdminService } from "../../gen/autonomy/ha/v1/admin_pb.js";
import { serve, type RunningServer } from "../../rpc/server.js";
import { HttpRouter } from "../../rpc/http-router.js";
import { registration } from "../../rpc/service-adapter.js";
import { clientFor } from "../../rpc/client.js";
import { silentLogger } from "../../core/log.js";
import { failedPrecondition } from "../../core/errors.js";
import { ConnectError, Code } from "@connectrpc/connect";

const unimplemented = async () => {
  throw failedPrecondition("not wired in this test");
};

describe("one port serves gRPC (with reflection and health) and HTTP/1.1 JSON", () => {
  let server: RunningServer;

  beforeAll(async () => {
    const http = new HttpRouter().get("/v1/health/leader", () => ({ json: { holder_id: "cp-node-1", current_epoch: 7 } }));
    server = await serve({
      host: "127.0.0.1",
      port: 0,
      log: silentLogger(),
      http,
      services: [
        registration(LeaderService, {
          getLeader: async (req, ctx) => ({ leader: { holderId: ctx.metadata.get("x-test") ?? "none", epoch: 7n }, revision: 3n }),
          async *watchLeader() {
            for (let r = 1; r <= 3; r++) yield { revision: BigInt(r), message: `event ${r}` };
          },
        }),
        registration(AgentService, {
          async *connect() {
            /* echo nothing */
          },
        }),
        registration(HaAdminService, {
          getStatus: unimplemented,
          triggerFailover: unimplemented,
          detectSplitBrain: unimplemented,
          recoverSplitBrain: unimplemented,
          queryAudit: unimplemented,
          setMaintenance: unimplemented,
          getHistory: unimplemented,
          listClusters: unimplemented,
        }),
      ],
    });
  });

  afterAll(async () => {
    await server?.close();
  });

  async function reflect(request: { listServices?: string; fileContainingSymbol?: string }) {
    const client = clientFor(ServerReflection, server.url);
    const requests = createWritableIterable<{ messageRequest: { case: "listServices" | "fileContainingSymbol"; value: string } }>();
    const responses = client.serverReflectionInfo(requests);
    const req = request.listServices !== undefined
      ? { messageRequest: { case: "listServices" as const, value: request.listServices } }
      : { messageRequest: { case: "fileContainingSymbol" as const, value: request.fileContainingSymbol ?? "" } };
    await requests.write(req);
    requests.close();
    for await (const response of responses) return response;
    throw new Error("no reflection response");
  }

  it("lists our services and grpc.health.v1.Health through the reflection protocol", async () => {
    const response = await reflect({ listServices: "" });
    expect(response.messageResponse.case).toBe("listServicesResponse");
    const names = response.messageResponse.case === "listServicesResponse"
      ? response.messageResponse.value.service.map((s) => s.name)
      : [];
    expect(names).toEqual(
      expect.arrayContaining([
        "autonomy.ha.v1.AgentService",
        "autonomy.ha.v1.LeaderService",
        "autonomy.ha.v1.HaAdminService",
        "grpc.health.v1.Health",
      ]),
    );
  });

  it("describes a service's messages (what grpcurl describe needs)", async () => {
    const response = await reflect({ fileContainingSymbol: "autonomy.ha.v1.HaAdminService" });
    expect(response.messageResponse.case).toBe("fileDescriptorResponse");
    if (response.messageResponse.case !== "fileDescriptorResponse") return;
    const files = response.messageResponse.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b));
    const admin = files.find((f) => f.name === "autonomy/ha/v1/admin.proto");
    expect(admin?.service.map((s) => s.name)).toEqual(["HaAdminService"]);
    expect(admin?.messageType.map((m) => m.name)).toContain("TriggerFailoverResponse");
    const failover = admin?.messageType.find((m) => m.name === "TriggerFailoverResponse");
    expect(failover?.field.map((f) => f.name)).toEqual(
      expect.arrayContaining(["previous_holder", "previous_epoch", "resigned_at", "message"]),
    );
  });

  it("answers grpc.health.v1 Check with SERVING, for the server and per service", async () => {
    const health = clientFor(Health, server.url);
    expect((await health.check({ service: "" })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    expect((await health.check({ service: "autonomy.ha.v1.LeaderService" })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    await expect(health.check({ service: "no.such.Service" })).rejects.toMatchObject({ code: Code.NotFound });
  });

  it("passes call metadata to handlers and streams server messages in order", async () => {
    const leader = clientFor(LeaderService, server.url, { metadata: { "x-test": "from-metadata" } });
    expect((await leader.getLeader({})).leader?.holderId).toBe("from-metadata");
    const revisions: number[] = [];
    for await (const event of leader.watchLeader({})) revisions.push(Number(event.revision));
    expect(revisions).toEqual([1, 2, 3]);
  });

  it("maps domain errors to gRPC status codes with the message intact", async () => {
    const admin = clientFor(HaAdminService, server.url);
    const err = await admin.getStatus({}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.FailedPrecondition);
    expect((err as ConnectError).rawMessage).toBe("not wired in this test");
  });

  it("answers plain HTTP/1.1 JSON on the same port, and 404 for unknown paths", async () => {
    const ok = await fetch(`${server.url}/v1/health/leader`);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ holder_id: "cp-node-1", current_epoch: 7 });
    const missing = await fetch(`${server.url}/nope`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: string }).error).toMatch(/no such path \/nope/);
    const wrongMethod = await fetch(`${server.url}/v1/health/leader`, { method: "DELETE" });
    expect(wrongMethod.status).toBe(405);
  });
});

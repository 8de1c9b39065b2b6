import { PassThrough } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { ReportStream, describeRefusal } from "../../agent/report-stream.js";
import { systemClock, waitFor } from "../../core/clock.js";
import { ErrorCode, HaError } from "../../core/errors.js";
import { createLogger, silentLogger } from "../../core/log.js";
import { NODE_ID_HEADER } from "../../core/metadata.js";
import { report } from "../../coordinator/view/builders.js";
import { AgentService } from "../../gen/autonomy/ha/v1/agent_pb.js";
import { HttpRouter } from "../../rpc/http-router.js";
import { serve, type RunningServer } from "../../rpc/server.js";
import { registration } from "../../rpc/service-adapter.js";

/** A coordinator that reads the first report of every stream, then ends the stream with `refusal`. */
async function refusingCoordinator(refusal: HaError) {
  const attempts: string[] = [];
  const server = await serve({
    host: "127.0.0.1",
    port: 0,
    log: silentLogger(),
    http: new HttpRouter(),
    services: [
      registration(AgentService, {
        // eslint-disable-next-line require-yield
        connect: async function* (requests, ctx) {
          attempts.push(ctx.metadata.get(NODE_ID_HEADER) ?? "");
          for await (const _ of requests) throw refusal;
        },
      }),
    ],
  });
  return { server, attempts };
}

/** Log records as JSON objects, from a pino logger writing into the test. */
function capturedLog() {
  const out = new PassThrough();
  const records: { level: number; msg: string; code?: string; err?: string }[] = [];
  let buffered = "";
  out.on("data", (chunk: Buffer) => {
    buffered += chunk.toString("utf8");
    const lines = buffered.split("\n");
    buffered = lines.pop() ?? "";
    for (const l of lines) if (l) records.push(JSON.parse(l) as (typeof records)[number]);
  });
  return { log: createLogger({ name: "agent", level: "info", pretty: false, destination: out }), records };
}

describe("the agent's side of a refused report stream", () => {
  let server: RunningServer | undefined;
  let stream: ReportStream | undefined;
  afterEach(async () => {
    await stream?.stop();
    await server?.close();
    stream = undefined;
    server = undefined;
  });

  async function run(refusal: HaError, backoffMaxMs: number) {
    const c = await refusingCoordinator(refusal);
    server = c.server;
    const { log, records } = capturedLog();
    stream = new ReportStream({
      coordinatorUrl: c.server.url,
      nodeId: "cp-node-1",
      clusterId: "default",
      reportIntervalMs: 1_000,
      report: () => report("cp-node-1"),
      execute: () => Promise.reject(new Error("no commands in this test")),
      clock: systemClock,
      log,
      backoffMaxMs,
    });
    const startedAt = Date.now();
    stream.start();
    await waitFor(() => c.attempts.length >= 2, { timeoutMs: 10_000, what: "a second connection attempt" });
    return { records, attempts: c.attempts, elapsedMs: Date.now() - startedAt };
  }

  it("wrong cluster: an error with the code and the coordinator's message, says it will not fix itself, waits the longest, tries again", async () => {
    const message = 'node cp-node-1 reports cluster "other"; this coordinator serves cluster "prod"';
    const { records, attempts, elapsedMs } = await run(new HaError(ErrorCode.FailedPrecondition, message), 600);
    expect(attempts).toEqual(["cp-node-1", "cp-node-1"]);
    const refused = records.filter((r) => r.level === 50);
    expect(refused.length).toBeGreaterThanOrEqual(1);
    expect(refused[0]).toMatchObject({ code: "FAILED_PRECONDITION", err: message });
    expect(refused[0]!.msg).toBe(
      `coordinator refused the report stream: FAILED_PRECONDITION: ${message}; will keep retrying every 0.6s, but this will not fix itself: the coordinator refuses this agent's configuration; check --cluster-id and --node-id against the coordinator's`,
    );
    // Backed off to the maximum (at least 80% of it), not the 200ms first step.
    expect(elapsedMs).toBeGreaterThanOrEqual(480);
  });

  it("an invalid report: logged as an error with the code and message, and the agent reconnects with backoff", async () => {
    const { records, attempts } = await run(new HaError(ErrorCode.InvalidArgument, "role: unknown value 99"), 5_000);
    expect(attempts.length).toBeGreaterThanOrEqual(2);
    const refused = records.find((r) => r.level === 50)!;
    expect(refused).toMatchObject({ code: "INVALID_ARGUMENT", err: "role: unknown value 99" });
    expect(refused.msg).toBe("coordinator refused the report stream: INVALID_ARGUMENT: role: unknown value 99; reconnecting with backoff");
  });
});

describe("which refusals will not fix themselves", () => {
  it.each([
    { code: ErrorCode.Unauthenticated, name: "UNAUTHENTICATED", permanent: true },
    { code: ErrorCode.PermissionDenied, name: "PERMISSION_DENIED", permanent: true },
    { code: ErrorCode.FailedPrecondition, name: "FAILED_PRECONDITION", permanent: true },
    { code: ErrorCode.InvalidArgument, name: "INVALID_ARGUMENT", permanent: false },
  ])("$name", async ({ code, name, permanent }) => {
    const { ConnectError, Code } = await import("@connectrpc/connect");
    const connectCode = { unauthenticated: Code.Unauthenticated, permission_denied: Code.PermissionDenied, failed_precondition: Code.FailedPrecondition, invalid_argument: Code.InvalidArgument }[
      code as "unauthenticated"
    ];
    const r = describeRefusal(new ConnectError("no", connectCode), 5_000);
    expect(r).toMatchObject({ code: name, message: "no", permanent });
    expect(r!.line.includes("will keep retrying every 5s, but this will not fix itself")).toBe(permanent);
  });

  it("a network failure is not a refusal", async () => {
    const { ConnectError, Code } = await import("@connectrpc/connect");
    expect(describeRefusal(new ConnectError("connect ECONNREFUSED", Code.Unavailable), 5_000)).toBeUndefined();
    expect(describeRefusal(new Error("socket hang up"), 5_000)).toBeUndefined();
  });
});

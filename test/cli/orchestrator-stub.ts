import { execFile, spawn, type ChildProcess } from "node:child_process";
import type { DescMessage, MessageInitShape } from "@bufbuild/protobuf";
import {
  HaAdminService,
  type DetectSplitBrainResponseSchema,
  type GetHistoryResponseSchema,
  type ListClustersResponseSchema,
  type GetStatusResponseSchema,
  type QueryAuditResponseSchema,
  type RecoverSplitBrainResponseSchema,
  type SetMaintenanceResponseSchema,
  type TriggerFailoverResponseSchema,
} from "../../gen/autonomy/ha/v1/admin_pb.js";
import { LeaderService, type WatchLeaderResponseSchema } from "../../gen/autonomy/ha/v1/leader_pb.js";
import { HttpRouter } from "../../rpc/http-router.js";
import { serve, type RunningServer } from "../../rpc/server.js";
import { registration, type CallContext } from "../../rpc/service-adapter.js";
import { silentLogger } from "../../core/log.js";

/*
 * An orchestrator that answers what the test scripted and records every call,
 * so CLI tests can check both what was printed and what was (not) sent.
 */

// Requests are typed loosely here: each test reads the few fields it asserts.
type Answer<S extends DescMessage> = (request: any) => Promise<MessageInitShape<S>> | MessageInitShape<S>;

export interface Script {
  getStatus?: Answer<typeof GetStatusResponseSchema>;
  triggerFailover?: Answer<typeof TriggerFailoverResponseSchema>;
  detectSplitBrain?: Answer<typeof DetectSplitBrainResponseSchema>;
  recoverSplitBrain?: Answer<typeof RecoverSplitBrainResponseSchema>;
  queryAudit?: Answer<typeof QueryAuditResponseSchema>;
  setMaintenance?: Answer<typeof SetMaintenanceResponseSchema>;
  getHistory?: Answer<typeof GetHistoryResponseSchema>;
  listClusters?: Answer<typeof ListClustersResponseSchema>;
  /** Events to send, then the stream stays open until the client goes (unless `end`). */
  watch?: { events: MessageInitShape<typeof WatchLeaderResponseSchema>[]; end?: boolean };
}

export interface RecordedCall {
  readonly method: string;
  readonly request: any;
  readonly caller: string | undefined;
}

export class OrchestratorStub {
  script: Script = {};
  readonly calls: RecordedCall[] = [];
  private constructor(private readonly server: RunningServer) {}

  get url(): string {
    return this.server.url;
  }

  static async start(): Promise<OrchestratorStub> {
    let stub: OrchestratorStub | undefined;
    const unary = (method: keyof Script) => async (request: unknown, ctx: CallContext) => {
      stub!.calls.push({ method, request, caller: ctx.metadata.get("x-autonomy-caller") });
      const answer = stub!.script[method] as ((r: unknown) => unknown) | undefined;
      if (!answer) throw new Error(`${method} not scripted in this test`);
      return (await answer(request)) as never;
    };
    const server = await serve({
      host: "127.0.0.1",
      port: 0,
      log: silentLogger(),
      http: new HttpRouter(),
      services: [
        registration(HaAdminService, {
          getStatus: unary("getStatus"),
          triggerFailover: unary("triggerFailover"),
          detectSplitBrain: unary("detectSplitBrain"),
          recoverSplitBrain: unary("recoverSplitBrain"),
          queryAudit: unary("queryAudit"),
          setMaintenance: unary("setMaintenance"),
          getHistory: unary("getHistory"),
          listClusters: unary("listClusters"),
        }),
        registration(LeaderService, {
          getLeader: async () => ({}),
          async *watchLeader(request, ctx) {
            stub!.calls.push({ method: "watchLeader", request, caller: ctx.metadata.get("x-autonomy-caller") });
            const watch = stub!.script.watch ?? { events: [] };
            for (const e of watch.events) yield e;
            if (watch.end) return;
            await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve, { once: true }));
          },
        }),
      ],
    });
    stub = new OrchestratorStub(server);
    return stub;
  }

  /** Clears the script and the record between tests. */
  reset(): void {
    this.script = {};
    this.calls.length = 0;
  }

  callsOf(method: string): RecordedCall[] {
    return this.calls.filter((c) => c.method === method);
  }

  close(): Promise<void> {
    return this.server.close();
  }
}

const BIN = new URL("../../bin/autonomy.js", import.meta.url).pathname;

/** The environment without any AUTONOMY_* setting of the machine running the tests. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("AUTONOMY_")) env[k] = v;
  return { ...env, ...extra };
}

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `autonomy ARGS` as a real child process and waits for it to exit. */
export function runCli(args: readonly string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: cleanEnv(env), timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Starts `autonomy ARGS` and leaves it running (for `ha watch`). */
export function startCli(args: readonly string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, [BIN, ...args], { env: cleanEnv(env), stdio: ["ignore", "pipe", "pipe"] });
}

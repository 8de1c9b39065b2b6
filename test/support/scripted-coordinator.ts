import type { MessageInitShape } from "@bufbuild/protobuf";
import { waitFor } from "../../core/clock.js";
import { silentLogger } from "../../core/log.js";
import { NODE_ID_HEADER } from "../../core/metadata.js";
import type { CommandOutcome, NodeCommand, NodeReport } from "../../core/model.js";
import { AgentService, type ConnectResponseSchema } from "../../gen/autonomy/ha/v1/agent_pb.js";
import { HttpRouter } from "../../rpc/http-router.js";
import { serve, type RunningServer } from "../../rpc/server.js";
import { registration } from "../../rpc/service-adapter.js";
import { ackFromWire, commandToWire, reportFromWire } from "../../rpc/wire.js";

export type CoordinatorMessage = MessageInitShape<typeof ConnectResponseSchema>;

/**
 * An in-test stand-in for the coordinator's AgentService: it records every
 * report and ack of every node, and sends exactly what the test writes (also
 * what no real coordinator would send), so agents can be driven and attacked.
 */
export class ScriptedCoordinator {
  readonly reports: NodeReport[] = [];
  readonly acks: CommandOutcome[] = [];
  private readonly outboxes = new Map<string, CoordinatorMessage[]>();
  private readonly wakers = new Map<string, () => void>();
  server!: RunningServer;

  async start(): Promise<this> {
    this.server = await serve({
      host: "127.0.0.1",
      port: 0,
      log: silentLogger(),
      http: new HttpRouter(),
      services: [registration(AgentService, { connect: (requests, ctx) => this.connect(requests, ctx) })],
    });
    return this;
  }

  get url(): string {
    return this.server.url;
  }

  /** Queues a raw message for `nodeId`'s stream. */
  send(message: CoordinatorMessage, nodeId = "cp-node-1"): void {
    this.outbox(nodeId).push(message);
    this.wakers.get(nodeId)?.();
  }

  /** Sends a command and resolves with its ack. */
  command(c: NodeCommand, nodeId = "cp-node-1"): Promise<CommandOutcome> {
    this.send({ message: { case: "command", value: commandToWire(c) } }, nodeId);
    return this.ack(c.commandId);
  }

  ack(commandId: string): Promise<CommandOutcome> {
    return waitFor(() => this.acks.find((a) => a.commandId === commandId), { timeoutMs: 15_000, what: `ack of ${commandId}` });
  }

  /** The first report after index `from` that satisfies `check`. */
  report(check: (r: NodeReport) => boolean, what: string, from = 0): Promise<NodeReport> {
    return waitFor(() => this.reports.slice(from).find(check), { timeoutMs: 15_000, what });
  }

  latest(): NodeReport | undefined {
    return this.reports[this.reports.length - 1];
  }

  async close(): Promise<void> {
    await this.server?.close();
  }

  private async *connect(
    requests: AsyncIterable<{ message: { case: string | undefined; value?: unknown } }>,
    ctx: { metadata: ReadonlyMap<string, string>; signal: AbortSignal },
  ): AsyncIterable<CoordinatorMessage> {
    const nodeId = ctx.metadata.get(NODE_ID_HEADER) ?? "";
    void (async () => {
      for await (const req of requests) {
        if (req.message.case === "report") this.reports.push(reportFromWire(nodeId, req.message.value as never));
        if (req.message.case === "ack") this.acks.push(ackFromWire(req.message.value as never));
      }
    })().catch(() => undefined);
    const outbox = this.outbox(nodeId);
    while (!ctx.signal.aborted) {
      const next = outbox.shift();
      if (next) {
        yield next;
        continue;
      }
      await new Promise<void>((resolve) => {
        this.wakers.set(nodeId, resolve);
        ctx.signal.addEventListener("abort", () => resolve(), { once: true });
      });
    }
  }

  private outbox(nodeId: string): CoordinatorMessage[] {
    const box = this.outboxes.get(nodeId) ?? [];
    this.outboxes.set(nodeId, box);
    return box;
  }
}

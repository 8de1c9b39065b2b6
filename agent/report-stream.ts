import { Code, ConnectError } from "@connectrpc/connect";
import { createWritableIterable } from "@connectrpc/connect/protocol";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { AgentService, type ConnectRequestSchema } from "../gen/autonomy/ha/v1/agent_pb.js";
import type { Clock } from "../core/clock.js";
import { describeError } from "../core/errors.js";
import type { Logger } from "../core/log.js";
import { CLUSTER_ID_HEADER, NODE_ID_HEADER } from "../core/metadata.js";
import type { CommandOutcome, NodeCommand, NodeReport } from "../core/model.js";
import { clientFor, type ClientCredentials } from "../rpc/client.js";
import { ackToWire, commandFromWire, reportToWire } from "../rpc/wire.js";

type Outgoing = MessageInitShape<typeof ConnectRequestSchema>;

export interface ReportStreamOptions {
  readonly coordinatorUrl: string;
  /** What the agent proves itself with; the coordinator's certificate must be a coordinator's. */
  readonly credentials?: ClientCredentials;
  readonly nodeId: string;
  readonly clusterId: string;
  readonly reportIntervalMs: number;
  readonly report: () => NodeReport;
  readonly execute: (command: NodeCommand) => Promise<CommandOutcome>;
  readonly clock: Clock;
  readonly log: Logger;
  /** The longest wait between attempts, and the wait after a refusal that will not fix itself (default 5s). */
  readonly backoffMaxMs?: number;
  /** Called when the stream connects or drops: the election queues on the lock only while no coordinator is connected. */
  readonly connectionChanged?: () => void;
}

const BACKOFF_BASE_MS = 200;
const BACKOFF_MAX_MS = 5_000;

/** Refusals the coordinator will repeat until someone changes this agent's configuration or identity. */
const PERMANENT: ReadonlyMap<Code, string> = new Map([
  [Code.FailedPrecondition, "the coordinator refuses this agent's configuration; check --cluster-id and --node-id against the coordinator's"],
  [Code.Unauthenticated, "the coordinator does not accept this agent's credentials; check its certificate or token"],
  [Code.PermissionDenied, "the coordinator does not let this identity report for this node; check the identity in the agent's certificate"],
]);
/** Statuses that mean the coordinator looked at us and said no, as opposed to a network failure. */
const REFUSALS: ReadonlySet<Code> = new Set([Code.InvalidArgument, ...PERMANENT.keys()]);

/** A refusal as it is logged, or undefined for a failure that is not one (network, restart). */
export function describeRefusal(err: unknown, retryEveryMs: number): { line: string; code: string; message: string; permanent: boolean } | undefined {
  if (!(err instanceof ConnectError) || !REFUSALS.has(err.code)) return undefined;
  const code = Code[err.code].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
  const message = err.rawMessage;
  const hint = PERMANENT.get(err.code);
  const line = hint
    ? `coordinator refused the report stream: ${code}: ${message}; will keep retrying every ${retryEveryMs / 1000}s, but this will not fix itself: ${hint}`
    : `coordinator refused the report stream: ${code}: ${message}; reconnecting with backoff`;
  return { line, code, message, permanent: hint !== undefined };
}
/** A stream that lived this long counts as healthy; the backoff starts over. */
const HEALTHY_STREAM_MS = 10_000;

/**
 * The agent's side of AgentService.Connect: a report on every change and on
 * each heartbeat, commands executed and acked. Reconnects with exponential
 * backoff and full jitter so a restarted coordinator is not stampeded. The
 * election never waits on this stream: with no coordinator the node keeps
 * its role and campaigns on its own.
 */
export class ReportStream {
  private readonly stopped = new AbortController();
  private changed: (() => void) | undefined;
  private pendingChange = false;
  private loop: Promise<void> | undefined;
  private connectedSince: number | undefined;

  constructor(private readonly options: ReportStreamOptions) {}

  get connected(): boolean {
    return this.connectedSince !== undefined;
  }

  start(): void {
    this.loop = this.run();
  }

  /** Sends a report soon (coalescing bursts of changes into one). */
  notifyChange(): void {
    this.pendingChange = true;
    this.changed?.();
  }

  async stop(): Promise<void> {
    this.stopped.abort(new Error("agent stopping"));
    this.changed?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    const { clock, log } = this.options;
    const client = clientFor(AgentService, this.options.coordinatorUrl, { metadata: { [NODE_ID_HEADER]: this.options.nodeId, [CLUSTER_ID_HEADER]: this.options.clusterId }, credentials: this.options.credentials });
    const maxMs = this.options.backoffMaxMs ?? BACKOFF_MAX_MS;
    let attempt = 0;
    while (!this.stopped.signal.aborted) {
      const started = clock.monotonicMs();
      let permanent = false;
      try {
        await this.session(client);
        log.info("coordinator stream ended");
      } catch (err) {
        if (this.stopped.signal.aborted) break;
        const refusal = describeRefusal(err, maxMs);
        if (refusal) {
          permanent = refusal.permanent;
          log.error({ code: refusal.code, err: refusal.message, url: this.options.coordinatorUrl, permanent }, refusal.line);
        } else {
          log.warn({ err: describeError(err), url: this.options.coordinatorUrl }, "coordinator stream failed");
        }
      } finally {
        if (this.connectedSince !== undefined) {
          this.connectedSince = undefined;
          this.options.connectionChanged?.();
        }
      }
      if (clock.monotonicMs() - started > HEALTHY_STREAM_MS) attempt = 0;
      // Retrying sooner cannot help a permanent refusal: wait the longest, with a little jitter.
      const wait = permanent ? maxMs * (0.8 + 0.2 * Math.random()) : Math.random() * Math.min(maxMs, BACKOFF_BASE_MS * 2 ** attempt++);
      await clock.sleep(wait, this.stopped.signal).catch(() => undefined);
    }
  }

  private async session(client: ReturnType<typeof clientFor<typeof AgentService>>): Promise<void> {
    const streamAbort = new AbortController();
    const onStop = () => streamAbort.abort();
    this.stopped.signal.addEventListener("abort", onStop, { once: true });
    const requests = createWritableIterable<Outgoing>();
    let chain = Promise.resolve();
    // One writer at a time keeps reports and acks in the order they were made.
    const send = (message: Outgoing) => {
      chain = chain.then(() => requests.write(message)).catch(() => streamAbort.abort());
      return chain;
    };
    const reportNow = () => {
      const { nodeId: _ignored, ...report } = this.options.report();
      return send({ message: { case: "report", value: reportToWire(report) } });
    };
    const responses = client.connect(requests, { signal: streamAbort.signal });
    const reporter = (async () => {
      await reportNow();
      if (!streamAbort.signal.aborted) {
        this.connectedSince = this.options.clock.monotonicMs();
        this.options.log.info({ url: this.options.coordinatorUrl }, "streaming reports to the coordinator");
        this.options.connectionChanged?.();
      }
      while (!streamAbort.signal.aborted) {
        await this.waitForChange(streamAbort.signal);
        if (streamAbort.signal.aborted) break;
        this.pendingChange = false;
        await reportNow();
      }
    })();
    try {
      for await (const response of responses) {
        if (response.message.case !== "command") continue;
        void this.handle(response.message.value, send);
      }
    } finally {
      streamAbort.abort();
      requests.close();
      this.stopped.signal.removeEventListener("abort", onStop);
      await reporter.catch(() => undefined);
    }
  }

  private async handle(wire: Parameters<typeof commandFromWire>[0], send: (m: Outgoing) => Promise<void>): Promise<void> {
    let command: NodeCommand;
    try {
      command = commandFromWire(wire);
    } catch (err) {
      this.options.log.warn({ err: describeError(err) }, "refused a malformed command");
      if (wire.commandId) {
        await send({ message: { case: "ack", value: ackToWire({ commandId: wire.commandId, result: "refused", message: describeError(err), epoch: 0, resignedAt: undefined }) } });
      }
      return;
    }
    const outcome = await this.options.execute(command).catch(
      (err: unknown): CommandOutcome => ({ commandId: command.commandId, result: "failed", message: describeError(err), epoch: 0, resignedAt: undefined }),
    );
    this.options.log.info({ commandId: outcome.commandId, result: outcome.result, epoch: outcome.epoch }, `command ${command.action.kind}: ${outcome.result}: ${outcome.message}`);
    await send({ message: { case: "ack", value: ackToWire(outcome) } });
    this.notifyChange();
  }

  /** Until the next heartbeat report is due, a change is noted, or the stream ends. */
  private async waitForChange(signal: AbortSignal): Promise<void> {
    if (this.pendingChange) return;
    const changed = new AbortController();
    this.changed = () => changed.abort();
    await this.options.clock.sleep(this.options.reportIntervalMs, AbortSignal.any([signal, changed.signal])).catch(() => undefined);
  }
}

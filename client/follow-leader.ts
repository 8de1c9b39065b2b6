import { timestampDate } from "@bufbuild/protobuf/wkt";
import { ConnectError } from "@connectrpc/connect";
import { HaAdminService } from "../gen/autonomy/ha/v1/admin_pb.js";
import { LeaderService, type WatchLeaderResponse } from "../gen/autonomy/ha/v1/leader_pb.js";
import { HaError, describeError, invalidArgument } from "../core/errors.js";
import { fromConnectError } from "../rpc/status.js";
import { clientFor, parseServiceUrl, type ClientCredentials } from "../rpc/client.js";
import { AsyncQueue } from "./async-queue.js";
import { followStream, type Backoff } from "./follow-stream.js";
import { updateFromWire, type FollowEvent, type LeaderUpdate, type StreamBehind } from "./leader-event.js";
import { LeaderSequence } from "./leader-sequence.js";

export interface FollowLeaderOptions {
  /**
   * Where to read the leader stream: coordinators and agents (any node
   * answers for the cluster it sees). The first is used first; after a
   * break the next one is tried, round the list.
   */
  readonly urls: readonly string[];
  /** The cluster to follow, when the coordinators serve several (default: the only one). */
  readonly clusterId?: string;
  /** Ends the iteration cleanly. */
  readonly signal: AbortSignal;
  /** mTLS and/or a bearer token, as the CLI's (see loadCredentials / credentialsFromEnv). */
  readonly credentials?: ClientCredentials;
  /** Reconnect backoff (default: 250 ms doubling to 5 s, half of it jitter). */
  readonly backoff?: Backoff;
}

type Raw =
  | { kind: "event"; event: WatchLeaderResponse; url: string; resumed: boolean }
  | { kind: "lost"; url: string; reason: string; at: Date }
  | { kind: "resumed"; url: string; at: Date; attempts: number; downMs: number }
  | { kind: "end"; error?: unknown };

/**
 * The leader stream as an async iterable of events, across breaks and
 * servers: each change of holder, epoch or Write-Ready once, in epoch order,
 * with epochs a stream skipped read back from the history; "disconnected",
 * "reconnected" and "behind" events say when it is not up to date rather
 * than pausing silently. Ends when `signal` aborts or the loop is left;
 * throws for what no retry fixes (a refused credential, a wrong URL scheme).
 */
export function followLeader(options: FollowLeaderOptions): AsyncIterable<FollowEvent> {
  if (!options || !Array.isArray(options.urls) || options.urls.length === 0) {
    throw invalidArgument("followLeader: urls must list at least one coordinator or agent URL, e.g. [\"http://127.0.0.1:8890\"]");
  }
  if (!(options.signal instanceof AbortSignal)) throw invalidArgument("followLeader: signal is required (an AbortSignal that ends the stream)");
  const urls = options.urls.map((u, i) => parseServiceUrl(u, `followLeader: urls[${i}]`));
  return { [Symbol.asyncIterator]: () => follow(urls, options) };
}

async function* follow(urls: readonly string[], options: FollowLeaderOptions): AsyncGenerator<FollowEvent> {
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  options.signal.addEventListener("abort", onAbort, { once: true });
  if (options.signal.aborted) stop.abort();
  const credentials = options.credentials ?? {};
  const leaders = urls.map((url) => clientFor(LeaderService, url, { credentials }));
  const queue = new AsyncQueue<Raw>();
  let current = urls[0]!;
  const running = followStream<WatchLeaderResponse>({
    open: (signal, opened) => {
      const i = opened % urls.length;
      current = urls[i]!;
      return leaders[i]!.watchLeader({ clusterId: options.clusterId ?? "" }, { signal });
    },
    signal: stop.signal,
    retryFirst: true,
    ...(options.backoff ? { backoff: options.backoff } : {}),
    onEvent: (event, { resumed }) => queue.push({ kind: "event", event, url: current, resumed }),
    onLost: (reason, at) => queue.push({ kind: "lost", url: current, reason, at }),
    onResumed: ({ at, attempts, downMs }) => queue.push({ kind: "resumed", url: current, at, attempts, downMs }),
  }).then(
    () => queue.push({ kind: "end" }),
    (error: unknown) => queue.push({ kind: "end", error }),
  );
  stop.signal.addEventListener("abort", () => queue.push({ kind: "end" }), { once: true });
  const sequence = new LeaderSequence();
  try {
    for (;;) {
      const raw = await queue.take();
      if (raw.kind === "end") {
        if (raw.error !== undefined && !stop.signal.aborted) throw streamFailure(raw.error, current);
        return;
      }
      if (raw.kind === "lost") {
        yield { type: "disconnected", url: raw.url, reason: raw.reason, at: raw.at };
        continue;
      }
      if (raw.kind === "resumed") {
        yield { type: "reconnected", url: raw.url, at: raw.at, attempts: raw.attempts, downMs: raw.downMs };
        continue;
      }
      const update = updateFromWire(raw.event, raw.url);
      if (!update) continue;
      const step = sequence.next(update, raw.resumed);
      yield* step.behind;
      if (step.missing) yield* await fromHistory(step.missing, raw.url, urls, credentials, stop.signal, options.clusterId);
      if (stop.signal.aborted) return;
      if (step.give) yield step.give;
    }
  } finally {
    options.signal.removeEventListener("abort", onAbort);
    stop.abort();
    await running;
  }
}

/**
 * The epochs a stream skipped, from the epoch history (the server that gave
 * the jump first, then the others), oldest first; a "behind" event for any
 * that no server could give.
 */
async function fromHistory(
  missing: { from: number; to: number },
  first: string,
  urls: readonly string[],
  credentials: ClientCredentials,
  signal: AbortSignal,
  clusterId: string | undefined,
): Promise<(LeaderUpdate | StreamBehind)[]> {
  const span = missing.to - missing.from + 1;
  let lastError = "";
  for (const url of [first, ...urls.filter((u) => u !== first)]) {
    if (signal.aborted) return [];
    try {
      const admin = clientFor(HaAdminService, url, { credentials, timeoutMs: 5_000, clusterId });
      // Newest first; room for the epochs opened since the jump.
      const { epochs } = await admin.getHistory({ limit: Math.min(1_000, span + 50) }, { signal });
      const found = epochs
        .map((r) => ({ epoch: Number(r.epoch), holderId: r.holderId, acquiredAt: r.acquiredAt ? timestampDate(r.acquiredAt) : undefined }))
        .filter((r) => r.epoch >= missing.from && r.epoch <= missing.to)
        .sort((a, b) => a.epoch - b.epoch);
      if (found.length !== span) {
        lastError = `${url} has ${found.length} of them in its history`;
        continue;
      }
      return found.map((r) => ({
        type: "leader",
        leader: { holderId: r.holderId, epoch: r.epoch, writeReady: false, acquiredAt: r.acquiredAt },
        cause: "history",
        revision: 0n,
        url,
        at: r.acquiredAt ?? new Date(),
        message: `${r.holderId} held epoch ${r.epoch} (read back from the epoch history: the stream skipped it)`,
      }));
    } catch (err) {
      lastError = `${url}: ${err instanceof ConnectError ? err.rawMessage : describeError(err)}`;
    }
  }
  const epochs = missing.from === missing.to ? `epoch ${missing.from}` : `epochs ${missing.from}..${missing.to}`;
  return [{ type: "behind", url: first, reason: `the stream skipped ${epochs} and the epoch history could not be read (${lastError})`, missedEpochs: missing }];
}

function streamFailure(err: unknown, url: string): HaError {
  const e = fromConnectError(err, `followLeader: the leader stream from ${url} was refused and another attempt cannot fix it (check the URL and the credentials)`);
  return new HaError(e.code, e.message, { cause: err, retryable: false });
}

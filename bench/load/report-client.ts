import { setMaxListeners } from "node:events";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { createWritableIterable, type WritableIterable } from "@connectrpc/connect/protocol";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { CLUSTER_ID_HEADER, NODE_ID_HEADER } from "../../core/metadata.js";
import { report } from "../../coordinator/view/builders.js";
import { HaAdminService } from "../../gen/autonomy/ha/v1/admin_pb.js";
import { AgentService, type ConnectRequestSchema } from "../../gen/autonomy/ha/v1/agent_pb.js";
import { clientFor, type Client } from "../../rpc/client.js";
import { reportToWire } from "../../rpc/wire.js";

/**
 * Load client for the agent-load bench, run as a child process: `count`
 * scripted agent streams (bench-0001, ...) multiplexed over a few HTTP/2
 * connections, each reporting every `intervalMs` with phases spread evenly,
 * and dealt round-robin to `clusterIds` (each stream names its cluster in its
 * header and its reports, as a real agent does).
 * While measuring, it compares the coordinator's view (GetStatus, once a
 * second, of one cluster in turn) with what it sent: a report sent more than 50 ms before the
 * snapshot and not in it counts as late.
 */
export interface StartLoad {
  readonly kind: "start";
  readonly url: string;
  readonly count: number;
  readonly transports: number;
  readonly intervalMs: number;
  /** The clusters the streams are dealt to, round-robin; one for a single-cluster coordinator. */
  readonly clusterIds: readonly string[];
  readonly lockDatabaseId: string;
}
export type LoadIn = StartLoad | { readonly kind: "measure" } | { readonly kind: "finish" };

export interface LoadDone {
  readonly kind: "done";
  readonly reportsSent: number;
  readonly reportsSentWhileMeasuring: number;
  readonly streamErrors: number;
  readonly commandsReceived: number;
  /** Node × snapshot pairs compared. */
  readonly checks: number;
  /** Checks where a report older than 50 ms was not yet in the view. */
  readonly lateOver50ms: number;
  /** Per check: age at the snapshot of the oldest report not yet in the view (0 when none). */
  readonly unappliedAgesMs: number[];
  readonly cpuSeconds: number;
}
export type LoadOut = { readonly kind: "connected" } | LoadDone;

type Outgoing = MessageInitShape<typeof ConnectRequestSchema>;

interface Stream {
  readonly nodeId: string;
  readonly clusterId: string;
  readonly requests: WritableIterable<Outgoing>;
  /** sentAt (ms) of the recent reports, oldest first. */
  readonly sent: number[];
  sequence: number;
}

const abort = new AbortController();
// Every stream listens on this one signal.
setMaxListeners(0, abort.signal);
const timers: NodeJS.Timeout[] = [];
const counters = { sent: 0, sentWhileMeasuring: 0, streamErrors: 0, commands: 0 };
let measuring = false;
const checks = { total: 0, late: 0, ages: [] as number[] };
let config: StartLoad | undefined;
let streams: Stream[] = [];
let sweeper: NodeJS.Timeout | undefined;

process.on("message", (m: LoadIn) => {
  if (m.kind === "start") start(m);
  else if (m.kind === "measure") {
    measuring = true;
    sweeper = setInterval(() => void sweep(), 1_000);
  } else void finish();
});
// The bench process went away: do not linger.
process.on("disconnect", () => process.exit(0));
process.on("SIGTERM", () => process.exit(0));

function start(c: StartLoad): void {
  config = c;
  // No keepalive PINGs, unlike rpc/client.ts: a coordinator saturated by thousands of
  // streams answers a PING late, the session is dropped under all the streams it
  // carries, and connect-node's ping timer then throws on the destroyed session
  // (connectrpc/connect-es#1795), which ended this process mid-run.
  const clients = Array.from({ length: c.transports }, () => createClient(AgentService, createGrpcTransport({ baseUrl: c.url })));
  streams = Array.from({ length: c.count }, (_, i) => {
    const nodeId = `bench-${String(i + 1).padStart(4, "0")}`;
    const clusterId = c.clusterIds[i % c.clusterIds.length]!;
    const stream: Stream = { nodeId, clusterId, requests: createWritableIterable<Outgoing>(), sent: [], sequence: 0 };
    const headers = { [NODE_ID_HEADER]: nodeId, [CLUSTER_ID_HEADER]: clusterId };
    const responses = clients[i % clients.length]!.connect(stream.requests, { headers, signal: abort.signal });
    void (async () => {
      for await (const msg of responses) if (msg.message.case === "command") counters.commands++;
    })().catch(() => {
      if (!abort.signal.aborted) counters.streamErrors++;
    });
    // Spread the phases so the coordinator sees a steady rate, not 1,000-report bursts.
    timers.push(
      setTimeout(() => {
        send(stream);
        timers.push(setInterval(() => send(stream), c.intervalMs));
      }, (i * c.intervalMs) / c.count),
    );
    return stream;
  });
  // Every stream has sent once after one interval.
  setTimeout(() => process.send!({ kind: "connected" } satisfies LoadOut), c.intervalMs + 50);
}

function send(s: Stream): void {
  const c = config!;
  const sentAt = new Date();
  const r = report(s.nodeId, { sequence: ++s.sequence, sentAt, clusterId: s.clusterId, nofailover: true, lockDatabaseId: c.lockDatabaseId, lockDatabase: undefined, endpoint: `http://127.0.0.1:1/${s.nodeId}`, version: "bench" });
  s.requests.write({ message: { case: "report", value: reportToWire(r) } }).catch(() => undefined);
  s.sent.push(sentAt.getTime());
  if (s.sent.length > 20) s.sent.shift();
  counters.sent++;
  if (measuring) counters.sentWhileMeasuring++;
}

let admin: Client<typeof HaAdminService> | undefined;

let sweeps = 0;

/**
 * One snapshot of the coordinator's view against what each stream sent. With
 * several clusters, one cluster per sweep, in turn: the checks then cost the
 * coordinator one GetStatus a second however many clusters it serves (a
 * hundred a second measured the checks more than the reports).
 */
async function sweep(): Promise<void> {
  admin ??= clientFor(HaAdminService, config!.url, { timeoutMs: 5_000 });
  const clusterId = config!.clusterIds[sweeps++ % config!.clusterIds.length]!;
  const status = await admin.getStatus({ clusterId }).catch(() => undefined);
  if (!status?.queriedAt) return;
  const snapshotMs = timestampMs(status.queriedAt);
  const byId = new Map(streams.map((s) => [s.nodeId, s]));
  for (const n of status.nodes) {
    const s = byId.get(n.nodeId);
    if (!s) continue;
    const inView = n.lastReportAt ? timestampMs(n.lastReportAt) : 0;
    const unapplied = s.sent.filter((t) => t > inView && t <= snapshotMs);
    const age = unapplied.length > 0 ? snapshotMs - unapplied[0]! : 0;
    checks.total++;
    checks.ages.push(age);
    if (age > 50) checks.late++;
  }
}

async function finish(): Promise<void> {
  measuring = false;
  clearInterval(sweeper);
  for (const t of timers) clearTimeout(t);
  for (const s of streams) s.requests.close();
  abort.abort();
  const cpu = process.cpuUsage();
  const done: LoadDone = {
    kind: "done",
    reportsSent: counters.sent,
    reportsSentWhileMeasuring: counters.sentWhileMeasuring,
    streamErrors: counters.streamErrors,
    commandsReceived: counters.commands,
    checks: checks.total,
    lateOver50ms: checks.late,
    unappliedAgesMs: checks.ages,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
  process.send!(done, () => process.exit(0));
}

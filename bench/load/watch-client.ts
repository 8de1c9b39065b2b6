import { connect, type ClientHttp2Session } from "node:http2";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { LeaderEventKind, type WatchLeaderResponse } from "../../gen/autonomy/ha/v1/leader_pb.js";
import { rawWatchLeader } from "./raw-watch.js";

/**
 * Load client for the watch fan-out bench, run as a child process: `streams`
 * WatchLeader streams over `transports` HTTP/2 connections. Once armed for a
 * round, each stream notes when the round's first LEADER_CHANGED event reaches
 * it, against the event's `at` (the coordinator's wall-clock time of
 * publication; same machine, same clock). It also notes the round's first
 * event of any kind: a failover publishes several (leader lost, leader
 * changed, Write-Ready), and each is fanned out to every stream.
 */
export type WatchIn =
  | { readonly kind: "open"; readonly url: string; readonly streams: number; readonly transports: number }
  | { readonly kind: "arm"; readonly round: number }
  | { readonly kind: "collect"; readonly round: number };

export interface Collected {
  readonly kind: "collected";
  readonly round: number;
  /** Per stream that saw it: arrival here minus the event's publication time, ms. */
  readonly latenciesMs: number[];
  /** Per stream that saw it: arrival, wall-clock ms, to compare streams across processes. */
  readonly arrivalsMs: number[];
  readonly holders: string[];
  readonly missing: number;
  /** Per stream: the round's first event of any kind, arrival minus publication, ms. */
  readonly firstEventLatenciesMs: number[];
  /** Kinds of the round's events up to LEADER_CHANGED, in order, as the first stream saw them. */
  readonly sequence: string[];
  /** This process's CPU time (user + system) from arming to this report, seconds. */
  readonly cpuSeconds: number;
}
export type WatchOut = { readonly kind: "opened"; readonly open: number; readonly failed: number } | { readonly kind: "armed"; readonly round: number } | Collected;

interface Seen {
  readonly latency: number;
  readonly arrival: number;
  readonly holder: string;
}

interface Round {
  readonly round: number;
  readonly seen: (Seen | undefined)[];
  readonly first: (number | undefined)[];
  readonly sequence: string[];
  readonly cpuAtArm: NodeJS.CpuUsage;
  count: number;
  reported: boolean;
}

let total = 0;
let snapshots = 0;
let failed = 0;
let armed: Round | undefined;
const sessions: ClientHttp2Session[] = [];

process.on("message", (m: WatchIn) => {
  if (m.kind === "open") open(m.url, m.streams, m.transports);
  else if (m.kind === "arm") {
    armed = { round: m.round, seen: new Array(total).fill(undefined), first: new Array(total).fill(undefined), sequence: [], cpuAtArm: process.cpuUsage(), count: 0, reported: false };
    process.send!({ kind: "armed", round: m.round } satisfies WatchOut);
  } else if (armed?.round === m.round) report();
});
process.on("disconnect", () => process.exit(0));
process.on("SIGTERM", () => process.exit(0));

function open(url: string, streams: number, transports: number): void {
  total = streams;
  for (let t = 0; t < transports; t++) {
    const session = connect(url);
    session.on("error", () => undefined); // each stream reports its own end
    sessions.push(session);
  }
  for (let i = 0; i < streams; i++) {
    let first = true;
    const onEvent = (e: WatchLeaderResponse, arrival: number) => {
      if (first) {
        first = false;
        if (++snapshots + failed === total) opened();
        return;
      }
      observe(i, e, arrival);
    };
    rawWatchLeader(sessions[i % transports]!, onEvent, (error) => {
      if (!first && !error) return;
      failed++;
      if (snapshots + failed === total) opened();
    });
  }
}

function observe(i: number, e: WatchLeaderResponse, arrival: number): void {
  const round = armed;
  if (!round || round.seen[i] || !e.at) return;
  const latency = arrival - timestampMs(e.at);
  round.first[i] ??= latency;
  if (i === 0) round.sequence.push(LeaderEventKind[e.kind]);
  if (e.kind !== LeaderEventKind.LEADER_CHANGED) return;
  round.seen[i] = { latency, arrival, holder: e.leader?.holderId ?? "" };
  if (++round.count === total) report();
}

function opened(): void {
  process.send!({ kind: "opened", open: snapshots, failed } satisfies WatchOut);
}

function report(): void {
  const round = armed;
  if (!round || round.reported) return;
  round.reported = true;
  const seen = round.seen.filter((s): s is Seen => s !== undefined);
  process.send!({
    kind: "collected",
    round: round.round,
    latenciesMs: seen.map((s) => s.latency),
    arrivalsMs: seen.map((s) => s.arrival),
    holders: [...new Set(seen.map((s) => s.holder))],
    missing: total - seen.length,
    firstEventLatenciesMs: round.first.filter((x): x is number => x !== undefined),
    sequence: round.sequence,
    cpuSeconds: cpuSecondsSince(round.cpuAtArm),
  } satisfies WatchOut);
}

function cpuSecondsSince(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1e6;
}

import { afterEach, describe, expect, it } from "vitest";
import { connect, type ClientHttp2Session, type ClientHttp2Stream } from "node:http2";
import { fromBinary } from "@bufbuild/protobuf";
import { LeaderEventKind, LeaderService, WatchLeaderResponseSchema, type WatchLeaderResponse } from "../../gen/autonomy/ha/v1/leader_pb.js";
import { waitFor } from "../../core/clock.js";
import { LeaderEventLog } from "../../core/leader-event-log.js";
import { silentLogger } from "../../core/log.js";
import { noLeader } from "../../core/model.js";
import { DirectStream } from "../../rpc/direct-stream.js";
import { HttpRouter } from "../../rpc/http-router.js";
import { leaderServiceFor } from "../../rpc/leader-service.js";
import { serve, type RunningServer } from "../../rpc/server.js";
import { registration } from "../../rpc/service-adapter.js";

const leader = (holderId: string, epoch: number) => ({ ...noLeader, holderId, epoch });

/** A WatchLeader call over plain node:http2 that reads only while `reading`. */
class RawWatcher {
  readonly events: WatchLeaderResponse[] = [];
  status: string | undefined;
  closed = false;
  private pending = Buffer.alloc(0);
  private readonly stream: ClientHttp2Stream;

  constructor(session: ClientHttp2Session) {
    this.stream = session.request({ ":method": "POST", ":path": "/autonomy.ha.v1.LeaderService/WatchLeader", "content-type": "application/grpc+proto", te: "trailers" });
    this.stream.end(Buffer.alloc(5)); // an empty request, gRPC-framed
    this.stream.on("data", (chunk: Buffer) => {
      this.pending = Buffer.concat([this.pending, chunk]);
      while (this.pending.length >= 5 && this.pending.length >= 5 + this.pending.readUInt32BE(1)) {
        const length = this.pending.readUInt32BE(1);
        this.events.push(fromBinary(WatchLeaderResponseSchema, this.pending.subarray(5, 5 + length)));
        this.pending = this.pending.subarray(5 + length);
      }
    });
    this.stream.on("trailers", (t) => (this.status = String(t["grpc-status"])));
    this.stream.on("error", () => undefined);
    this.stream.on("close", () => (this.closed = true));
  }

  /** Stops reading: HTTP/2 flow control then holds the server back. */
  pause(): void {
    this.stream.pause();
  }

  resume(): void {
    this.stream.resume();
  }

  cancel(): void {
    this.stream.close();
  }

  get last(): WatchLeaderResponse | undefined {
    return this.events[this.events.length - 1];
  }
}

describe("the leader stream's fan-out over real gRPC", () => {
  let server: RunningServer | undefined;
  const sessions: ClientHttp2Session[] = [];
  let watchers = 0;

  async function start(log: LeaderEventLog): Promise<string> {
    server = await serve({
      host: "127.0.0.1",
      port: 0,
      log: silentLogger(),
      http: new HttpRouter(),
      services: [leaderServiceFor(log, { now: () => new Date(), onWatcher: (d) => (watchers += d) })],
    });
    return server.url;
  }

  function session(url: string): ClientHttp2Session {
    const s = connect(url);
    s.on("error", () => undefined);
    sessions.push(s);
    return s;
  }

  afterEach(async () => {
    for (const s of sessions.splice(0)) s.destroy();
    await server?.close();
    server = undefined;
    watchers = 0;
  });

  it("every watcher gets the snapshot first, then every event in order, events published in one tick included", async () => {
    const log = new LeaderEventLog(noLeader, () => new Date());
    log.publish("leader_changed", leader("a", 1), "a leads");
    const url = await start(log);
    const s = session(url);
    const all = Array.from({ length: 40 }, () => new RawWatcher(s));
    await waitFor(() => all.every((w) => w.events.length === 1), { timeoutMs: 10_000, what: "every snapshot" });
    expect(all.every((w) => w.events[0]!.kind === LeaderEventKind.SNAPSHOT && w.events[0]!.revision === 1n && w.events[0]!.leader?.holderId === "a")).toBe(true);

    // Two in the same tick share one pass (and one write per watcher); the next ones come one by one.
    log.publish("leader_lost", leader("", 1), "a gone");
    log.publish("leader_changed", leader("b", 2), "b leads");
    for (let epoch = 3; epoch <= 6; epoch++) {
      await new Promise((r) => setTimeout(r, 5));
      log.publish("leader_changed", leader(`n${epoch}`, epoch), `n${epoch} leads`);
    }
    await waitFor(() => all.every((w) => w.last?.revision === 7n), { timeoutMs: 10_000, what: "every watcher at revision 7" });
    for (const w of all) {
      expect(w.events.map((e) => `${e.revision}:${LeaderEventKind[e.kind]}:${e.leader?.holderId}`)).toEqual([
        "1:SNAPSHOT:a",
        "2:LEADER_LOST:",
        "3:LEADER_CHANGED:b",
        "4:LEADER_CHANGED:n3",
        "5:LEADER_CHANGED:n4",
        "6:LEADER_CHANGED:n5",
        "7:LEADER_CHANGED:n6",
      ]);
    }
  });

  it("a watcher that stops reading is held back, not buffered for; the others get every event, and it resumes from a fresh snapshot", async () => {
    // A log of 50 events, and events of ~1 KiB: the slow watcher's HTTP/2
    // window (64 KiB) and the stream's buffer fill long before 2,000 events.
    const log = new LeaderEventLog(noLeader, () => new Date(), 50);
    const url = await start(log);
    const slow = new RawWatcher(session(url));
    const fast = new RawWatcher(session(url));
    await waitFor(() => slow.events.length === 1 && fast.events.length === 1, { timeoutMs: 10_000, what: "both snapshots" });
    slow.pause();

    const padding = "x".repeat(1000);
    for (let i = 1; i <= 2000; i++) {
      log.publish("leader_changed", leader("n", i), `epoch ${i} ${padding}`);
      // A fast reader keeps up (within the log's 50 events) however far the slow one is behind.
      if (i % 25 === 0) await waitFor(() => fast.last?.revision === BigInt(i), { timeoutMs: 10_000, intervalMs: 1, what: `the fast watcher at revision ${i}` });
    }
    await waitFor(() => fast.last?.revision === 2000n, { timeoutMs: 20_000, what: "the fast watcher at revision 2000" });
    expect(fast.events.map((e) => Number(e.revision))).toEqual(Array.from({ length: 2001 }, (_, i) => i));
    expect(fast.events.slice(1).every((e) => e.kind === LeaderEventKind.LEADER_CHANGED)).toBe(true);

    slow.resume();
    await waitFor(() => slow.last?.revision === 2000n, { timeoutMs: 20_000, what: "the slow watcher at revision 2000" });
    const revisions = slow.events.map((e) => Number(e.revision));
    // What was queued for it is bounded by flow control and the stream's buffer, not by 2,000 events.
    expect(slow.events.length).toBeLessThan(400);
    // Rising revisions; the gap is announced by a snapshot, and after it the events follow one by one.
    expect(revisions.every((r, i) => i === 0 || r > revisions[i - 1]!)).toBe(true);
    const gap = revisions.findIndex((r, i) => i > 0 && r > revisions[i - 1]! + 1);
    expect(gap).toBeGreaterThan(0);
    expect(slow.events[gap]!.kind).toBe(LeaderEventKind.SNAPSHOT);
    expect(revisions.slice(gap).every((r, i) => i === 0 || r === revisions[gap + i - 1]! + 1)).toBe(true);
    expect(slow.closed).toBe(false);
  });

  it("a cancelled watcher is removed and the others carry on", async () => {
    const log = new LeaderEventLog(noLeader, () => new Date());
    const url = await start(log);
    const s = session(url);
    const [gone, stays] = [new RawWatcher(s), new RawWatcher(s)];
    await waitFor(() => gone.events.length === 1 && stays.events.length === 1 && watchers === 2, { timeoutMs: 10_000, what: "both snapshots" });
    gone.cancel();
    await waitFor(() => watchers === 1, { timeoutMs: 10_000, what: "the server to see the cancellation" });
    log.publish("leader_changed", leader("a", 1), "a leads");
    await waitFor(() => stays.last?.revision === 1n, { timeoutMs: 10_000, what: "the event" });
    expect(gone.events).toHaveLength(1);
  });

  it("the stream ends with an OK status when the server's handler finishes, and its frames go straight to HTTP/2", async () => {
    let direct: boolean | undefined;
    server = await serve({
      host: "127.0.0.1",
      port: 0,
      log: silentLogger(),
      http: new HttpRouter(),
      services: [
        registration(LeaderService, {
          getLeader: async () => ({}),
          watchLeader: () =>
            new DirectStream(async (sink) => {
              // If a grpc-js upgrade moves the call's HTTP/2 stream, the fan-out
              // silently falls back to the slower path: this says so.
              direct = sink.direct;
            }),
        }),
      ],
    });
    const w = new RawWatcher(session(server.url));
    await waitFor(() => w.closed, { timeoutMs: 10_000, what: "the stream to end" });
    expect(w.status).toBe("0");
    expect(direct).toBe(true);
  });
});

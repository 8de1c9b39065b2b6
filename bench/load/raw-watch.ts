import type { ClientHttp2Session } from "node:http2";
import { fromBinary } from "@bufbuild/protobuf";
import { WatchLeaderResponseSchema, type WatchLeaderResponse } from "../../gen/autonomy/ha/v1/leader_pb.js";

const PATH = "/autonomy.ha.v1.LeaderService/WatchLeader";
/** An empty WatchLeaderRequest in gRPC's length-prefixed framing: not compressed, length 0. */
const EMPTY_REQUEST = Buffer.alloc(5);

/**
 * A WatchLeader call spoken directly over node:http2, with gRPC's framing
 * done by hand. The fan-out bench opens thousands of these on the same two
 * cores as the coordinator; a full client library spends about as much CPU per
 * received message as the coordinator spends sending it (measured: ~70 µs in
 * connect-es's async-iterable pipeline), and that would be measured as fan-out
 * latency. This reader costs a buffer slice per event, and a fromBinary per
 * distinct message (see `decode`).
 */
export function rawWatchLeader(
  session: ClientHttp2Session,
  onEvent: (e: WatchLeaderResponse, arrivalMs: number) => void,
  onEnd: (error: Error | undefined) => void,
): () => void {
  const req = session.request({ ":method": "POST", ":path": PATH, "content-type": "application/grpc+proto", te: "trailers" });
  req.end(EMPTY_REQUEST);
  let pending: Buffer = Buffer.alloc(0);
  req.on("data", (chunk: Buffer) => {
    const arrival = performance.timeOrigin + performance.now();
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 5) {
      const length = pending.readUInt32BE(1);
      if (pending.length < 5 + length) break;
      onEvent(decode(pending, 5, 5 + length), arrival);
      pending = pending.subarray(5 + length);
    }
  });
  let status: string | undefined;
  let ended = false;
  const end = (error: Error | undefined) => {
    if (ended) return;
    ended = true;
    onEnd(error);
  };
  req.on("trailers", (t) => (status = String(t["grpc-status"] ?? "")));
  req.on("error", (err) => end(err));
  req.on("close", () => end(status && status !== "0" ? new Error(`WatchLeader ended with grpc-status ${status}`) : undefined));
  return () => req.close();
}

/**
 * Every stream of a process receives the same bytes for the same event, and
 * the same bytes decode to the same message: decoding them once per process
 * rather than once per stream keeps the clients' CPU (which shares the
 * machine with the server under test) off the measured path. Measured: a
 * fromBinary was over half of a client's time per received event. Snapshots
 * differ per stream (their `at`) and are decoded each time.
 */
const recent: { bytes: Buffer; message: WatchLeaderResponse }[] = [];
function decode(buf: Buffer, start: number, end: number): WatchLeaderResponse {
  for (const r of recent) if (sameBytes(r.bytes, buf, start, end)) return r.message;
  const bytes = Buffer.from(buf.subarray(start, end));
  const message = fromBinary(WatchLeaderResponseSchema, bytes);
  recent.unshift({ bytes, message });
  if (recent.length > 8) recent.pop();
  return message;
}

/** A plain loop: for ~100-byte messages cheaper than Buffer#equals, a native call each time. */
function sameBytes(a: Buffer, b: Buffer, start: number, end: number): boolean {
  if (a.length !== end - start) return false;
  for (let i = a.length - 1; i >= 0; i--) if (a[i] !== b[start + i]) return false;
  return true;
}

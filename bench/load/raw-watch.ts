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
 * latency. This reader costs a buffer slice and one fromBinary per event.
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
      onEvent(fromBinary(WatchLeaderResponseSchema, pending.subarray(5, 5 + length)), arrival);
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

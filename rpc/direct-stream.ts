import * as grpc from "@grpc/grpc-js";
import type { ServerHttp2Stream } from "node:http2";
import type { Encoded } from "./service-adapter.js";

/**
 * A server stream that writes for itself instead of yielding messages. The
 * leader stream's fan-out (leader-fanout.ts) writes each event to thousands
 * of calls in one synchronous pass: an async generator per call costs a
 * promise, a generator resumption and a microtask per call per event, and at
 * 10,000 watchers that was most of the fan-out's time. `start` resolves when
 * the stream is over (it ends with the call, on `signal`).
 */
export class DirectStream {
  constructor(readonly start: (sink: StreamSink, signal: AbortSignal) => Promise<void>) {}
}

/** One call's outgoing side, as a DirectStream sees it. */
export interface StreamSink {
  /** Queues messages, in order; false when the call's buffer is full: write no more until `onDrain` calls back. */
  write(messages: readonly Encoded[]): boolean;
  onDrain(resume: () => void): void;
  /** True when the bytes go straight to the HTTP/2 stream (see `sinkOf`). */
  readonly direct: boolean;
}

/**
 * Where the server's authentication interceptor leaves the call's HTTP/2
 * stream, on the call's metadata object (no client can set a symbol key).
 */
export const HTTP2_STREAM = Symbol("autonomy.http2Stream");

/**
 * The HTTP/2 stream under a grpc-js call, for the interceptor to pass on.
 * grpc-js keeps it in a field of its innermost call object (the one the first
 * interceptor wraps); undefined if a later grpc-js does not.
 */
export function http2StreamOf(call: unknown): ServerHttp2Stream | undefined {
  const stream = (call as { stream?: unknown } | undefined)?.stream;
  if (!stream || typeof stream !== "object") return undefined;
  const s = stream as Partial<ServerHttp2Stream>;
  return typeof s.respond === "function" && typeof s.write === "function" && typeof s.once === "function" && "session" in s ? (stream as ServerHttp2Stream) : undefined;
}

/** Several messages framed into one buffer, once per array: a fan-out hands every call the same array. */
const joined = new WeakMap<readonly Encoded[], Buffer>();
function framedTogether(messages: readonly Encoded[]): Buffer {
  if (messages.length === 1) return messages[0]!.framed;
  let bytes = joined.get(messages);
  if (!bytes) joined.set(messages, (bytes = Buffer.concat(messages.map((m) => m.framed))));
  return bytes;
}

/**
 * A sink for a server-streaming call. When the interceptor found the call's
 * HTTP/2 stream, messages are written to it as ready-made gRPC frames: one
 * write of shared bytes per call, where grpc-js's own path costs an object-mode
 * Writable, its interceptor chain and a fresh framed copy of every message
 * (about half of the fan-out's per-call cost, measured). grpc-js still sends
 * the headers (here, before the first frame), the trailers when the call ends,
 * and sees cancellation; back-pressure is the HTTP/2 stream's own buffer.
 * Otherwise every message goes through `call.write`.
 */
export function sinkOf(call: grpc.ServerWritableStream<unknown, unknown>): StreamSink {
  const stream = (call.metadata as unknown as Record<symbol, ServerHttp2Stream | undefined>)[HTTP2_STREAM];
  if (!stream) {
    return {
      direct: false,
      write: (messages) => {
        let ok = true;
        for (const m of messages) ok = call.write(m);
        return ok;
      },
      onDrain: (resume) => call.once("drain", resume),
    };
  }
  call.sendMetadata(new grpc.Metadata());
  // grpc-js handles one 'error' per stream; a write racing a reset could raise a second.
  stream.on("error", () => undefined);
  return {
    direct: true,
    write: (messages) => {
      if (stream.destroyed || !stream.writable) return true; // cancelled: its abort removes the watcher
      return stream.write(framedTogether(messages));
    },
    onDrain: (resume) => stream.once("drain", resume),
  };
}

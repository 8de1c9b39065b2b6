import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary, type DescMessage, type DescMethod, type DescService, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import type { GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import { noPrincipal, PRINCIPAL, type Principal } from "./auth/principal.js";
import { grpcStatusOf } from "./status.js";
import { HaError, describeError, invalidArgument } from "../core/errors.js";
import { DirectStream, sinkOf } from "./direct-stream.js";

/** What a handler knows about its call, besides the request. */
export interface CallContext {
  /** Request metadata, first value per key, keys lower-case. */
  readonly metadata: ReadonlyMap<string, string>;
  /** The peer address as the transport saw it. */
  readonly peer: string;
  /** Aborted when the client cancels or the server shuts down. */
  readonly signal: AbortSignal;
  /** Who is calling, proved by the transport (certificate or token); never from a header the client set. */
  readonly principal: Principal;
}

/**
 * A response message already encoded, so that one event sent to many
 * watchers is serialized once rather than once per stream.
 */
export class Encoded {
  private framedBytes: Buffer | undefined;
  private constructor(readonly bytes: Buffer) {}

  /** The message in gRPC's length-prefixed framing (uncompressed), as it goes on the wire. */
  get framed(): Buffer {
    if (!this.framedBytes) {
      const out = Buffer.allocUnsafe(5 + this.bytes.length);
      out.writeUInt8(0, 0);
      out.writeUInt32BE(this.bytes.length, 1);
      this.bytes.copy(out, 5);
      this.framedBytes = out;
    }
    return this.framedBytes;
  }

  static of<D extends DescMessage>(schema: D, value: MessageInitShape<D>): Encoded {
    return new Encoded(Buffer.from(toBinary(schema, create(schema, value))));
  }
}

type UnaryHandler<I extends DescMessage, O extends DescMessage> = (
  request: MessageShape<I>,
  ctx: CallContext,
) => Promise<MessageInitShape<O>>;
type ServerStreamHandler<I extends DescMessage, O extends DescMessage> = (
  request: MessageShape<I>,
  ctx: CallContext,
) => AsyncIterable<MessageInitShape<O> | Encoded> | DirectStream;
type BidiHandler<I extends DescMessage, O extends DescMessage> = (
  requests: AsyncIterable<MessageShape<I>>,
  ctx: CallContext,
) => AsyncIterable<MessageInitShape<O>>;

type HandlerFor<M> = M extends { methodKind: "unary"; input: infer I extends DescMessage; output: infer O extends DescMessage }
  ? UnaryHandler<I, O>
  : M extends { methodKind: "server_streaming"; input: infer I extends DescMessage; output: infer O extends DescMessage }
    ? ServerStreamHandler<I, O>
    : M extends { methodKind: "bidi_streaming"; input: infer I extends DescMessage; output: infer O extends DescMessage }
      ? BidiHandler<I, O>
      : never;

/** Plain-object handlers for every method of a generated service. */
export type ServiceHandlers<S> = S extends { method: infer M extends GenServiceMethods } ? { [K in keyof M]: HandlerFor<M[K]> } : never;

/** A generated service paired with its handlers, ready to register. */
export interface ServiceRegistration {
  readonly service: DescService;
  readonly definition: grpc.ServiceDefinition;
  readonly implementation: grpc.UntypedServiceImplementation;
}

export function registration<S extends DescService>(service: S, handlers: ServiceHandlers<S>): ServiceRegistration {
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  const implementation: grpc.UntypedServiceImplementation = {};
  const byName = handlers as unknown as Record<string, (...args: unknown[]) => unknown>;
  for (const method of service.methods) {
    const handler = byName[method.localName];
    if (!handler) throw new Error(`no handler for ${service.typeName}.${method.name}`);
    definition[method.name] = methodDefinition(service, method);
    implementation[method.name] = adapt(method, handler);
  }
  return { service, definition: definition as grpc.ServiceDefinition, implementation };
}

export function methodDefinition(service: DescService, method: DescMethod): grpc.MethodDefinition<unknown, unknown> {
  const input = method.input;
  const output = method.output;
  return {
    path: `/${service.typeName}/${method.name}`,
    requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
    responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
    requestSerialize: (value: unknown) => Buffer.from(toBinary(input, value as MessageShape<DescMessage>)),
    // Kept raw: grpc-js answers INTERNAL when this throws; `decodeRequest` answers INVALID_ARGUMENT.
    requestDeserialize: (bytes: Buffer) => bytes,
    responseSerialize: (value: unknown) =>
      value instanceof Encoded ? value.bytes : Buffer.from(toBinary(output, create(output, value as MessageInitShape<DescMessage>))),
    responseDeserialize: (bytes: Buffer) => fromBinary(output, bytes),
  };
}

/** A request's bytes as its message, or INVALID_ARGUMENT for bytes that are not one. */
export function decodeRequest(method: DescMethod, bytes: unknown): MessageShape<DescMessage> {
  try {
    return fromBinary(method.input, bytes as Uint8Array);
  } catch (err) {
    throw invalidArgument(`malformed ${method.input.typeName} message: ${describeError(err)}`);
  }
}

async function* decodeEach(method: DescMethod, requests: AsyncIterable<unknown>): AsyncIterable<MessageShape<DescMessage>> {
  // Not for-await, which destroys the call's stream when the loop ends early
  // (a malformed message here, a refused one in the handler): the status the
  // handler's error should send would be lost. The call ends with the response.
  const it = requests[Symbol.asyncIterator]();
  for (;;) {
    const next = await it.next();
    if (next.done) return;
    yield decodeRequest(method, next.value);
  }
}

type AnyServerCall = grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>;

function contextOf(call: AnyServerCall, controller: AbortController): CallContext {
  const metadata = new Map<string, string>();
  for (const [key, value] of Object.entries(call.metadata.getMap())) {
    metadata.set(key.toLowerCase(), Buffer.isBuffer(value) ? value.toString("utf8") : String(value));
  }
  (call as grpc.ServerUnaryCall<unknown, unknown>).on("cancelled", () => controller.abort(new Error("call cancelled by the client")));
  // Set by the server's authentication interceptor; a call that did not pass it may do nothing.
  const principal = (call.metadata as unknown as Record<symbol, Principal | undefined>)[PRINCIPAL] ?? noPrincipal;
  return { metadata, peer: call.getPeer(), signal: controller.signal, principal };
}

/** An error as grpc-js sends it: status code, message, and the HaError's trailers. */
export function toServiceError(err: unknown): grpc.ServiceError {
  const { code, details } = grpcStatusOf(err);
  const metadata = new grpc.Metadata();
  if (err instanceof HaError) for (const [key, value] of Object.entries(err.trailers ?? {})) metadata.set(key, value);
  return Object.assign(new Error(details), { code, details, metadata });
}

/** Writes honouring back-pressure: waits for 'drain' when the buffer is full. */
async function writeAll(
  call: grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>,
  messages: AsyncIterable<unknown>,
  signal: AbortSignal,
): Promise<void> {
  for await (const message of messages) {
    if (signal.aborted) return;
    if (!call.write(message)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          call.off("drain", done);
          signal.removeEventListener("abort", done);
          resolve();
        };
        call.on("drain", done);
        signal.addEventListener("abort", done, { once: true });
      });
    }
  }
}

function adapt(method: DescMethod, handler: (...args: unknown[]) => unknown): grpc.UntypedHandleCall {
  switch (method.methodKind) {
    case "unary":
      return (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        const controller = new AbortController();
        let request: unknown;
        try {
          request = decodeRequest(method, call.request);
        } catch (err) {
          callback(toServiceError(err));
          return;
        }
        (handler(request, contextOf(call, controller)) as Promise<unknown>).then(
          (response) => callback(null, response),
          (err: unknown) => callback(toServiceError(err)),
        );
      };
    case "server_streaming":
      return (call: grpc.ServerWritableStream<unknown, unknown>) => {
        const controller = new AbortController();
        const ctx = contextOf(call, controller);
        let request: unknown;
        try {
          request = decodeRequest(method, call.request);
        } catch (err) {
          call.emit("error", toServiceError(err));
          return;
        }
        const out = handler(request, ctx) as AsyncIterable<unknown> | DirectStream;
        (out instanceof DirectStream ? out.start(sinkOf(call), ctx.signal) : writeAll(call, out, ctx.signal)).then(
          () => {
            if (!ctx.signal.aborted) call.end();
          },
          (err: unknown) => {
            // Emitting 'error' lets grpc-js send the status and end the
            // stream; destroy() would reset the stream and lose the status.
            if (!ctx.signal.aborted) call.emit("error", toServiceError(err));
          },
        );
      };
    case "bidi_streaming":
      return (call: grpc.ServerDuplexStream<unknown, unknown>) => {
        const controller = new AbortController();
        const ctx = contextOf(call, controller);
        const requests = decodeEach(method, call as unknown as AsyncIterable<unknown>);
        writeAll(call, handler(requests, ctx) as AsyncIterable<unknown>, ctx.signal).then(
          () => {
            if (!ctx.signal.aborted) call.end();
          },
          (err: unknown) => {
            // Emitting 'error' lets grpc-js send the status and end the
            // stream; destroy() would reset the stream and lose the status.
            if (!ctx.signal.aborted) call.emit("error", toServiceError(err));
          },
        );
      };
    default:
      throw new Error(`method kind ${method.methodKind} is not supported`);
  }
}

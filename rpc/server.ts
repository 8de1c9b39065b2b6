import * as grpc from "@grpc/grpc-js";
import { createServer as createHttpServer } from "node:http";
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import type { Logger } from "../core/log.js";
import { HealthService, ServingStatus } from "./health.js";
import type { HttpRouter } from "./http-router.js";
import { reflectionFor } from "./reflection.js";
import type { ServiceRegistration } from "./service-adapter.js";

export interface ServeOptions {
  /** Interface to listen on, e.g. 127.0.0.1. */
  readonly host: string;
  /** Port; 0 picks a free one. */
  readonly port: number;
  readonly services: readonly ServiceRegistration[];
  /** Answers plain HTTP/1.1 on the same port. */
  readonly http: HttpRouter;
  readonly log: Logger;
  /** Largest gRPC message accepted, bytes. */
  readonly maxMessageBytes?: number;
}

export interface RunningServer {
  readonly host: string;
  readonly port: number;
  /** http://host:port — the URL for the CLI, grpcurl (-plaintext host:port) and curl. */
  readonly url: string;
  readonly health: HealthService;
  close(): Promise<void>;
}

/** The first bytes of every HTTP/2 cleartext connection (RFC 9113 §3.4). */
const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/**
 * One port for gRPC (h2c: agents, CLI, grpcurl) and HTTP/1.1 JSON (curl, load
 * balancers, Prometheus): each connection's first bytes decide where it goes.
 * Every port serves reflection and grpc.health.v1.
 */
export async function serve(options: ServeOptions): Promise<RunningServer> {
  const server = new grpc.Server({
    "grpc.max_receive_message_length": options.maxMessageBytes ?? 1024 * 1024,
    "grpc.keepalive_time_ms": 10_000,
    "grpc.keepalive_timeout_ms": 5_000,
    "grpc.keepalive_permit_without_calls": 1,
    "grpc.http2.min_ping_interval_without_data_ms": 1_000,
  });
  const health = new HealthService(options.services.map((s) => s.service.typeName));
  for (const reg of [...options.services, health.registration()]) server.addService(reg.definition, reg.implementation);
  reflectionFor(options.services.map((s) => s.service).concat(health.registration().service)).addToServer(server);

  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const http = createHttpServer({ keepAliveTimeout: 5_000 }, options.http.handle);
  const sockets = new Set<Socket>();

  const net: NetServer = createNetServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", (err) => options.log.debug({ err: err.message }, "connection error"));
    route(socket, (isH2) => {
      if (isH2) injector.injectConnection(socket);
      else http.emit("connection", socket);
    });
  });

  await new Promise<void>((resolve, reject) => {
    net.once("error", reject);
    net.listen(options.port, options.host, () => {
      net.off("error", reject);
      resolve();
    });
  });
  const address = net.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  const url = `http://${options.host.includes(":") ? `[${options.host}]` : options.host}:${port}`;

  let closed: Promise<void> | undefined;
  return {
    host: options.host,
    port,
    url,
    health,
    close: () =>
      (closed ??= (async () => {
        health.setAll(ServingStatus.NOT_SERVING);
        // net.close() resolves only once every connection is gone, so stop
        // accepting first, then end the connections we handed on.
        const stopped = new Promise<void>((resolve) => net.close(() => resolve()));
        injector.destroy();
        server.forceShutdown();
        http.closeAllConnections();
        for (const s of sockets) s.destroy();
        await stopped;
      })()),
  };
}

/**
 * Reads just enough of the first bytes to tell the HTTP/2 preface from an
 * HTTP/1.x request line, puts them back, and hands the socket on.
 */
function route(socket: Socket, handOff: (isH2: boolean) => void): void {
  let seen = Buffer.alloc(0);
  // A connection that never says anything must not hold a descriptor forever.
  const silent = setTimeout(() => socket.destroy(), 10_000);
  const onReadable = () => {
    let chunk: Buffer | null;
    while ((chunk = socket.read() as Buffer | null) !== null) seen = Buffer.concat([seen, chunk]);
    const n = Math.min(seen.length, H2_PREFACE.length);
    if (n === 0) return;
    const isH2 = seen.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
    if (isH2 && n < H2_PREFACE.length) return; // a prefix of the preface: wait for more
    clearTimeout(silent);
    socket.off("readable", onReadable);
    socket.unshift(seen);
    handOff(isH2);
  };
  socket.on("readable", onReadable);
  socket.once("close", () => clearTimeout(silent));
}

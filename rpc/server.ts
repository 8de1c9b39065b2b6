import * as grpc from "@grpc/grpc-js";
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import { createServer as createTlsServer, TLSSocket, type PeerCertificate } from "node:tls";
import { invalidArgument } from "../core/errors.js";
import type { Logger } from "../core/log.js";
import { grpcAccess, httpAccess } from "./auth/access.js";
import { Authenticator, FORWARDED_PRINCIPAL_HEADER, isLoopbackHost, type AuthResult, type CallCredentials } from "./auth/authenticator.js";
import { PRINCIPAL } from "./auth/principal.js";
import { HealthService, ServingStatus } from "./health.js";
import type { HttpRouter } from "./http-router.js";
import { reflectionFor } from "./reflection.js";
import type { ServiceRegistration } from "./service-adapter.js";
import { HTTP2_STREAM, http2StreamOf } from "./direct-stream.js";

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
  /** Who may call what. Without one (or with no credentials in it) the port must be on loopback. */
  readonly auth?: Authenticator;
  /** Listen beyond loopback without credentials anyway (private test networks only). */
  readonly insecureListen?: boolean;
  /** A second, plain-HTTP port for probes that cannot authenticate: /healthz and /readyz only. */
  readonly healthListen?: { readonly host: string; readonly port: number };
}

export interface RunningServer {
  readonly host: string;
  readonly port: number;
  /** http://host:port, or https:// with TLS — the URL for the CLI, grpcurl and curl. */
  readonly url: string;
  readonly health: HealthService;
  /** Listening beyond loopback with no credentials (--insecure-listen). */
  readonly insecure: boolean;
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
  const auth = options.auth ?? new Authenticator(undefined, undefined);
  const insecure = auth.open && !isLoopbackHost(options.host);
  if (insecure && !options.insecureListen) {
    throw invalidArgument(
      `refusing to listen on ${options.host}:${options.port} without credentials: anyone who reaches it could order a failover. ` +
        "Pass --tls-cert, --tls-key and --tls-ca (mTLS) and/or --token-file, listen on 127.0.0.1, " +
        "or add --insecure-listen on a private test network",
    );
  }
  if (insecure) {
    options.log.warn({ host: options.host, port: options.port }, "INSECURE: listening beyond loopback with no credentials (--insecure-listen): anyone who reaches this port can order a failover");
  }
  const server = new grpc.Server({
    interceptors: [authInterceptor(auth)],
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
  const http = createHttpServer({ keepAliveTimeout: 5_000 }, guardHttp(auth, options.http.handle));
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", (err) => options.log.debug({ err: err.message }, "connection error"));
  };

  const tls = auth.tls;
  // With TLS, ALPN tells gRPC (h2) from curl and browsers (http/1.1): curl
  // offers both, gRPC clients only h2. Client certificates are asked for but
  // checked per call, so a probe on loopback and a token holder get in too,
  // and a refused caller hears why instead of a failed handshake.
  const net: NetServer = tls
    ? createTlsServer(
        {
          cert: tls.cert,
          key: tls.key,
          ca: tls.ca,
          requestCert: true,
          rejectUnauthorized: false,
          minVersion: "TLSv1.2",
          ALPNCallback: ({ protocols }) => (protocols.includes("http/1.1") ? "http/1.1" : protocols.includes("h2") ? "h2" : undefined),
        },
        (socket) => {
          if (socket.alpnProtocol === "h2") injector.injectConnection(socket);
          else http.emit("connection", socket);
        },
      ).on("connection", track)
        .on("tlsClientError", (err) => options.log.debug({ err: err.message }, "TLS handshake failed"))
    : createNetServer((socket) => {
        track(socket);
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
  const probes = options.healthListen ? await listenForProbes(options.healthListen, options.http.handle) : undefined;
  const address = net.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  const url = `${tls ? "https" : "http"}://${options.host.includes(":") ? `[${options.host}]` : options.host}:${port}`;

  let closed: Promise<void> | undefined;
  return {
    host: options.host,
    port,
    url,
    health,
    insecure,
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
        if (probes) {
          probes.closeAllConnections();
          await new Promise<void>((resolve) => probes.close(() => resolve()));
        }
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

/** The peer certificate of a TLS socket, only when the handshake verified it against our CA. */
function verifiedCertificate(socket: unknown): PeerCertificate | undefined {
  if (!(socket instanceof TLSSocket) || !socket.authorized) return undefined;
  const cert = socket.getPeerCertificate();
  return cert && cert.raw ? cert : undefined;
}

const grpcCodeOf = (r: Extract<AuthResult, { ok: false }>) => (r.code === "unauthenticated" ? grpc.status.UNAUTHENTICATED : grpc.status.PERMISSION_DENIED);

/**
 * Authenticates and authorizes every gRPC call before its handler runs
 * (reflection and health included), and hands the principal to the handler on
 * the call's metadata object, where no client can put it.
 */
function authInterceptor(auth: Authenticator): grpc.ServerInterceptor {
  return (method, call) =>
    new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, mdNext) => {
            const header = (key: string) => {
              const v = metadata.get(key)[0];
              return v === undefined ? undefined : String(v);
            };
            const auth_ = call.getAuthContext();
            const result = auth.authorize(grpcAccess(method.path), {
              certificate: auth_.sslPeerCertificate,
              authorization: header("authorization"),
              forwarded: header(FORWARDED_PRINCIPAL_HEADER),
              remoteAddress: call.getConnectionInfo().remoteAddress,
            });
            if (!result.ok) {
              call.sendStatus({ code: grpcCodeOf(result), details: result.message, metadata: new grpc.Metadata() });
              return;
            }
            (metadata as unknown as Record<symbol, unknown>)[PRINCIPAL] = result.principal;
            // For streams that write ready-made frames (direct-stream.ts); `call` is grpc-js's innermost call.
            (metadata as unknown as Record<symbol, unknown>)[HTTP2_STREAM] = http2StreamOf(call);
            mdNext(metadata);
          },
        }),
    });
}

/** The same check for plain HTTP: 401 without valid credentials, 403 without the role. */
function guardHttp(auth: Authenticator, handle: (req: IncomingMessage, res: ServerResponse) => void) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const creds: CallCredentials = {
      certificate: verifiedCertificate(req.socket),
      authorization: req.headers.authorization,
      forwarded: undefined,
      remoteAddress: req.socket.remoteAddress,
    };
    const result = auth.authorize(httpAccess(req.url ?? "/", req.method), creds);
    if (result.ok) {
      // Where routes find the caller (for the audit log and the web view's admin check); no client can set it.
      (req as unknown as Record<symbol, unknown>)[PRINCIPAL] = result.principal;
      handle(req, res);
      return;
    }
    req.resume();
    const status = result.code === "unauthenticated" ? 401 : 403;
    res.writeHead(status, { "content-type": "application/json", ...(status === 401 ? { "www-authenticate": 'Bearer realm="autonomy"' } : {}) });
    res.end(JSON.stringify({ error: result.message }) + "\n");
  };
}

/** Only what a liveness or readiness probe needs: no leader, no epoch, no cluster detail. */
const PROBE_PATHS = new Set(["/healthz", "/readyz"]);

async function listenForProbes(at: { host: string; port: number }, handle: (req: IncomingMessage, res: ServerResponse) => void) {
  const probes = createHttpServer({ keepAliveTimeout: 5_000 }, (req, res) => {
    if ((req.method === "GET" || req.method === "HEAD") && PROBE_PATHS.has((req.url ?? "").split("?")[0]!)) {
      handle(req, res);
      return;
    }
    req.resume();
    res.writeHead(404, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: "this is the probe port: only GET /healthz and /readyz" }) + "\n");
  });
  await new Promise<void>((resolve, reject) => {
    probes.once("error", reject);
    probes.listen(at.port, at.host, () => {
      probes.off("error", reject);
      resolve();
    });
  });
  return probes;
}

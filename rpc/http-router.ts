import type { IncomingMessage, ServerResponse } from "node:http";
import { HaError, ErrorCode, describeError, invalidArgument } from "../core/errors.js";
import { PRINCIPAL, noPrincipal, type Principal } from "./auth/principal.js";
import { httpStatusOf } from "./status.js";

/**
 * Writes one chunk of a streamed reply; false when the client is gone or slow
 * (the socket's buffer is full), so a writer can stop or skip.
 */
export type StreamWriter = (chunk: string) => boolean;

/**
 * What a route returns: JSON by default, text (Prometheus metrics, the web
 * view's assets), or a stream (server-sent events) that runs until it
 * resolves or the client goes away (`signal` aborts).
 */
export type HttpReply =
  | { status?: number; json: unknown }
  | { status?: number; text: string; contentType?: string; headers?: Record<string, string> }
  | { status?: number; stream: (write: StreamWriter, signal: AbortSignal) => Promise<void>; contentType: string; headers?: Record<string, string> };

export interface HttpRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  /** The parsed JSON body; undefined when there is none. */
  readonly body: unknown;
  readonly headers: IncomingMessage["headers"];
  readonly peer: string;
  /** Who the server authenticated for this request (set by rpc/server.ts before routing). */
  readonly principal: Principal;
}

export type HttpRoute = (request: HttpRequest) => Promise<HttpReply> | HttpReply;

const MAX_BODY_BYTES = 64 * 1024;
/** Every path we serve is a few dozen characters; a longer target is a mistake or a probe. */
export const MAX_TARGET_LENGTH = 2048;

/**
 * The path and query of a request target, or INVALID_ARGUMENT (400) saying
 * what is wrong with it: too long, not a path, or percent-encoding that does
 * not decode (`//%zz`). Checked before routing so that no route, and no
 * error message, ever works with a target it cannot read.
 */
export function parseTarget(raw: string): { path: string; query: URLSearchParams } {
  const shown = JSON.stringify(raw.length > 100 ? `${raw.slice(0, 100)}...` : raw);
  if (raw.length > MAX_TARGET_LENGTH) throw invalidArgument(`request target is ${raw.length} characters long; at most ${MAX_TARGET_LENGTH} are accepted`);
  if (!raw.startsWith("/")) throw invalidArgument(`request target ${shown} is not a path; it must start with "/"`);
  // Prefixing the origin keeps "//x" a path rather than a host.
  const url = new URL(`http://localhost${raw}`);
  const undecodable = (s: string) => {
    try {
      decodeURIComponent(s);
      return false;
    } catch {
      return true;
    }
  };
  if (undecodable(url.pathname)) throw invalidArgument(`malformed percent-encoding in the path of ${shown}: "%" must be followed by two hex digits of valid UTF-8`);
  if (undecodable(url.search.replace(/\+/g, " "))) throw invalidArgument(`malformed percent-encoding in the query of ${shown}: "%" must be followed by two hex digits of valid UTF-8`);
  return { path: url.pathname, query: url.searchParams };
}

/**
 * A small JSON router for the plain HTTP/1.1 side of each port: health paths
 * for curl and load balancers, /metrics for Prometheus. Errors are JSON
 * `{"error": "..."}` with the status from our one error table.
 */
export class HttpRouter {
  private readonly routes = new Map<string, Map<string, HttpRoute>>();
  private chooser: ((query: URLSearchParams) => HttpRouter) | undefined;

  /**
   * A router that hands each request to one of several, chosen from its
   * query (a coordinator serving several clusters picks by ?cluster=ID);
   * `pick` throws a HaError for a query that names none of them.
   */
  static choosing(pick: (query: URLSearchParams) => HttpRouter): HttpRouter {
    const router = new HttpRouter();
    router.chooser = pick;
    return router;
  }

  get(path: string, route: HttpRoute): this {
    return this.on("GET", path, route);
  }

  post(path: string, route: HttpRoute): this {
    return this.on("POST", path, route);
  }

  on(method: string, path: string, route: HttpRoute): this {
    const byMethod = this.routes.get(path) ?? new Map<string, HttpRoute>();
    byMethod.set(method, route);
    this.routes.set(path, byMethod);
    return this;
  }

  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    this.dispatch(req).then(
      (reply) => send(res, reply),
      (err: unknown) => send(res, { status: httpStatusOf(err), json: { error: describeError(err) } }),
    );
  };

  private async dispatch(req: IncomingMessage): Promise<HttpReply> {
    let url: { path: string; query: URLSearchParams };
    try {
      url = parseTarget(req.url ?? "/");
    } catch (err) {
      await drain(req);
      throw err;
    }
    if (this.chooser) {
      let chosen: HttpRouter;
      try {
        chosen = this.chooser(url.query);
      } catch (err) {
        await drain(req);
        throw err;
      }
      return chosen.dispatchTo(req, url);
    }
    return this.dispatchTo(req, url);
  }

  private async dispatchTo(req: IncomingMessage, url: { path: string; query: URLSearchParams }): Promise<HttpReply> {
    const byMethod = this.routes.get(url.path);
    if (!byMethod) {
      await drain(req);
      return { status: 404, json: { error: `no such path ${url.path}; try /v1/health/leader, /healthz or /metrics` } };
    }
    const method = req.method ?? "GET";
    const route = byMethod.get(method) ?? (method === "HEAD" ? byMethod.get("GET") : undefined);
    if (!route) {
      await drain(req);
      return { status: 405, json: { error: `${method} is not allowed on ${url.path}; use ${[...byMethod.keys()].join(" or ")}` } };
    }
    const body = await readJsonBody(req);
    return route({
      method,
      path: url.path,
      query: url.query,
      body,
      headers: req.headers,
      peer: `${req.socket.remoteAddress ?? "unknown"}:${req.socket.remotePort ?? 0}`,
      principal: ((req as unknown as Record<symbol, unknown>)[PRINCIPAL] as Principal | undefined) ?? noPrincipal,
    });
  }
}

async function drain(req: IncomingMessage): Promise<void> {
  req.resume();
}

async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      throw new HaError(ErrorCode.InvalidArgument, `request body is larger than ${MAX_BODY_BYTES} bytes`);
    }
    chunks.push(chunk);
  }
  if (size === 0) return undefined;
  const text = Buffer.concat(chunks).toString("utf8");
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new HaError(ErrorCode.InvalidArgument, `request body is not valid JSON: ${describeError(err)}`);
  }
}

function send(res: ServerResponse, reply: HttpReply): void {
  if (res.headersSent) return;
  const status = reply.status ?? 200;
  if ("stream" in reply) {
    res.writeHead(status, { "content-type": reply.contentType, "cache-control": "no-store", ...reply.headers });
    if (res.req.method === "HEAD") {
      res.end();
      return;
    }
    const gone = new AbortController();
    res.once("close", () => gone.abort());
    const write: StreamWriter = (chunk) => !res.writableEnded && !res.destroyed && res.write(chunk);
    // A stream that fails after its headers went out can only be cut short.
    reply.stream(write, gone.signal).then(
      () => res.end(),
      () => res.destroy(),
    );
    return;
  }
  if ("text" in reply) {
    res.writeHead(status, { "content-type": reply.contentType ?? "text/plain; charset=utf-8", ...reply.headers });
    res.end(reply.text);
    return;
  }
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(reply.json) + "\n");
}

import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { DescService } from "@bufbuild/protobuf";
import { checkServerIdentity, type PeerCertificate } from "node:tls";
import { invalidArgument } from "../core/errors.js";
import type { ClientTlsMaterial } from "./auth/tls.js";
import { failoverTransport } from "./failover-transport.js";

export type { Client };

export interface ClientOptions {
  /** Metadata sent with every call (identity: x-autonomy-node-id, x-autonomy-caller). */
  readonly metadata?: Readonly<Record<string, string>>;
  /** Default deadline for unary calls, ms. */
  readonly timeoutMs?: number;
  /** What this client proves itself with. */
  readonly credentials?: ClientCredentials;
  /** The cluster every request names when it names none (a coordinator may serve several). */
  readonly clusterId?: string;
}

export interface ClientCredentials {
  /** mTLS: our certificate and key, and the CA the server's certificate must chain to. */
  readonly tls?: ClientTlsMaterial;
  /** A bearer token (--token / AUTONOMY_TOKEN). */
  readonly token?: string;
  /**
   * The OU the server's certificate must carry, e.g. "coordinator": an agent
   * takes commands only from the real coordinator, not from another agent
   * whose certificate the same CA signed.
   */
  readonly serverRole?: string;
}

/** Checks a user-given URL and returns it normalised (no trailing slash). */
export function parseServiceUrl(raw: string, what = "URL"): string {
  let url: URL;
  try {
    url = new URL(raw.includes("://") ? raw : `http://${raw}`);
  } catch {
    throw invalidArgument(`${what} "${raw}" is not a URL; expected http://HOST:PORT`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw invalidArgument(`${what} "${raw}" must start with http:// or https://`);
  }
  if (!url.port && url.protocol === "http:" && !raw.includes("://")) {
    throw invalidArgument(`${what} "${raw}" has no port; expected http://HOST:PORT`);
  }
  return url.origin;
}

/**
 * Several URLs of one tier, comma-separated (coordinators: the client follows
 * the active one). Each is checked as parseServiceUrl checks one; returns them
 * normalised and joined with commas.
 */
export function parseServiceUrls(raw: string, what = "URL"): string {
  const parts = raw.split(",").map((p) => p.trim());
  if (parts.some((p) => p === "")) throw invalidArgument(`${what} "${raw}" has an empty entry; separate URLs with single commas`);
  const urls = parts.map((p) => parseServiceUrl(p, what));
  const dup = urls.find((u, i) => urls.indexOf(u) !== i);
  if (dup) throw invalidArgument(`${what} lists ${dup} twice`);
  return urls.join(",");
}

export function createTransport(url: string, options: ClientOptions = {}): Transport {
  const creds = options.credentials ?? {};
  const metadata = { ...options.metadata, ...(creds.token ? { authorization: `Bearer ${creds.token}` } : {}) };
  const addMetadata: Interceptor = (next) => (req) => {
    for (const [k, v] of Object.entries(metadata)) req.header.set(k, v);
    return next(req);
  };
  const interceptors = [addMetadata, ...(options.clusterId ? [namingCluster(options.clusterId)] : [])];
  const https = url.startsWith("https:");
  if (creds.tls && !https) throw invalidArgument(`${url} is http:// but TLS credentials are set; use https://`);
  return createGrpcTransport({
    baseUrl: url,
    interceptors,
    defaultTimeoutMs: options.timeoutMs,
    pingIntervalMs: 5_000,
    pingIdleConnection: true,
    nodeOptions: https
      ? {
          ca: creds.tls?.ca,
          cert: creds.tls?.cert,
          key: creds.tls?.key,
          checkServerIdentity: (host: string, cert: PeerCertificate) => checkServerIdentity(host, cert) ?? serverRoleError(cert, creds.serverRole),
        }
      : undefined,
  });
}

function serverRoleError(cert: PeerCertificate, role: string | undefined): Error | undefined {
  if (!role) return undefined;
  const ou = cert.subject?.OU;
  const ous = ou === undefined ? [] : Array.isArray(ou) ? ou : [ou];
  if (ous.includes(role)) return undefined;
  return new Error(`the server's certificate (CN=${String(cert.subject?.CN)}) is not a ${role} certificate (OU=${role}); refusing to take its orders`);
}

/** A client of `url`, or of every server of a comma-separated list, following whichever takes the call. */
export function clientFor<S extends DescService>(service: S, url: string, options: ClientOptions = {}): Client<S> {
  return createClient(service, failoverTransport(url.split(","), (one) => createTransport(one, options)));
}

/** Fills cluster_id on every request that has the field and leaves it empty. */
function namingCluster(clusterId: string): Interceptor {
  const fill = <M>(message: M): M => {
    const m = message as { clusterId?: unknown };
    if (typeof m.clusterId === "string" && m.clusterId === "") m.clusterId = clusterId;
    return message;
  };
  return (next) => (req) => {
    if (req.stream) {
      const messages = req.message;
      return next({ ...req, message: (async function* () {
        for await (const m of messages) yield fill(m);
      })() });
    }
    fill(req.message);
    return next(req);
  };
}

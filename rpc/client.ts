import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { DescService } from "@bufbuild/protobuf";
import { checkServerIdentity, type PeerCertificate } from "node:tls";
import { invalidArgument } from "../core/errors.js";
import type { ClientTlsMaterial } from "./auth/tls.js";

export type { Client };

export interface ClientOptions {
  /** Metadata sent with every call (identity: x-autonomy-node-id, x-autonomy-caller). */
  readonly metadata?: Readonly<Record<string, string>>;
  /** Default deadline for unary calls, ms. */
  readonly timeoutMs?: number;
  /** What this client proves itself with. */
  readonly credentials?: ClientCredentials;
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

export function createTransport(url: string, options: ClientOptions = {}): Transport {
  const creds = options.credentials ?? {};
  const metadata = { ...options.metadata, ...(creds.token ? { authorization: `Bearer ${creds.token}` } : {}) };
  const addMetadata: Interceptor = (next) => (req) => {
    for (const [k, v] of Object.entries(metadata)) req.header.set(k, v);
    return next(req);
  };
  const https = url.startsWith("https:");
  if (creds.tls && !https) throw invalidArgument(`${url} is http:// but TLS credentials are set; use https://`);
  return createGrpcTransport({
    baseUrl: url,
    interceptors: [addMetadata],
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

export function clientFor<S extends DescService>(service: S, url: string, options: ClientOptions = {}): Client<S> {
  return createClient(service, createTransport(url, options));
}

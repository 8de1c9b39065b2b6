import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { DescService } from "@bufbuild/protobuf";
import { invalidArgument } from "../core/errors.js";

export type { Client };

export interface ClientOptions {
  /** Metadata sent with every call (identity: x-autonomy-node-id, x-autonomy-caller). */
  readonly metadata?: Readonly<Record<string, string>>;
  /** Default deadline for unary calls, ms. */
  readonly timeoutMs?: number;
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
  const metadata = options.metadata ?? {};
  const addMetadata: Interceptor = (next) => (req) => {
    for (const [k, v] of Object.entries(metadata)) req.header.set(k, v);
    return next(req);
  };
  return createGrpcTransport({
    baseUrl: url,
    interceptors: [addMetadata],
    defaultTimeoutMs: options.timeoutMs,
    pingIntervalMs: 5_000,
    pingIdleConnection: true,
  });
}

export function clientFor<S extends DescService>(service: S, url: string, options: ClientOptions = {}): Client<S> {
  return createClient(service, createTransport(url, options));
}

import { isLoopbackHost, type Authenticator } from "./authenticator.js";
import { gauge, Registry } from "../metrics.js";

/**
 * How a port is protected, for /metrics: an alert on
 * autonomy_listener_insecure == 1 catches a listener that anyone on the
 * network could use to order a failover. Read on every scrape, so a token
 * file reloaded on SIGHUP shows at once.
 */
export function listenerMetrics(auth: Authenticator | undefined, host: string, registry: Registry = new Registry()): Registry {
  const open = () => !auth || auth.open;
  gauge(registry, {
    name: "autonomy_listener_insecure",
    help: "1 when this port listens beyond loopback with no credentials (--insecure-listen).",
    samples: () => [[{}, open() && !isLoopbackHost(host) ? 1 : 0]],
  });
  gauge(registry, { name: "autonomy_listener_tls", help: "1 when this port requires TLS (mTLS or token over TLS).", samples: () => [[{}, auth?.tls ? 1 : 0]] });
  gauge(registry, { name: "autonomy_listener_tokens", help: "Bearer tokens this port accepts (from --token-file).", samples: () => [[{}, auth?.tokens?.size ?? 0]] });
  return registry;
}

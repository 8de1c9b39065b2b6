import { isLoopbackHost, type Authenticator } from "./authenticator.js";

/**
 * How a port is protected, for /metrics: an alert on
 * autonomy_listener_insecure == 1 catches a listener that anyone on the
 * network could use to order a failover.
 */
export function listenerMetrics(auth: Authenticator | undefined, host: string): string {
  const open = !auth || auth.open;
  return [
    "# HELP autonomy_listener_insecure 1 when this port listens beyond loopback with no credentials (--insecure-listen).",
    "# TYPE autonomy_listener_insecure gauge",
    `autonomy_listener_insecure ${open && !isLoopbackHost(host) ? 1 : 0}`,
    "# HELP autonomy_listener_tls 1 when this port requires TLS (mTLS or token over TLS).",
    "# TYPE autonomy_listener_tls gauge",
    `autonomy_listener_tls ${auth?.tls ? 1 : 0}`,
    "# HELP autonomy_listener_tokens Bearer tokens this port accepts (from --token-file).",
    "# TYPE autonomy_listener_tokens gauge",
    `autonomy_listener_tokens ${auth?.tokens?.size ?? 0}`,
    "",
  ].join("\n");
}

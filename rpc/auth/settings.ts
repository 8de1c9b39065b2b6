import type { SettingSpec, Settings } from "../../core/settings.js";
import { parseHostPort } from "../../core/host-port.js";
import { Authenticator } from "./authenticator.js";
import { loadTls, type TlsMaterial } from "./tls.js";
import { TokenStore } from "./tokens.js";

/** The credentials flags every serving process (agent, coordinator) takes. */
export const serverSecuritySettings: readonly SettingSpec[] = [
  { flag: "tls-cert", env: "AUTONOMY_TLS_CERT", kind: "string", help: "PEM certificate this process presents (and serves with); CN names the node, OU its role (agent, coordinator, admin, read)" },
  { flag: "tls-key", env: "AUTONOMY_TLS_KEY", kind: "string", help: "PEM private key of --tls-cert" },
  { flag: "tls-ca", env: "AUTONOMY_TLS_CA", kind: "string", help: "PEM CA that signs every certificate of the cluster; with the three TLS flags the port is https and callers need a certificate or a token" },
  { flag: "token-file", env: "AUTONOMY_TOKEN_FILE", kind: "string", help: 'bearer tokens accepted, one "NAME ROLE TOKEN" per line (ROLE read, admin or agent); reloaded on SIGHUP' },
  { flag: "health-listen", env: "AUTONOMY_HEALTH_LISTEN", kind: "string", help: "HOST:PORT of a plain-HTTP port that answers only /healthz and /readyz, for probes that cannot authenticate (kubelet)" },
  { flag: "insecure-listen", env: "AUTONOMY_INSECURE_LISTEN", kind: "bool", help: "allow listening beyond loopback with no credentials (private test networks only; logged and exported as a metric)" },
];

/** How a serving process checks its callers. */
export interface ServerSecurity {
  readonly auth: Authenticator;
  readonly insecureListen: boolean;
  /** A probe-only plain-HTTP listener: /healthz and /readyz, nothing else. */
  readonly healthListen: { readonly host: string; readonly port: number } | undefined;
}

export function serverSecurity(s: Settings): ServerSecurity {
  const tls = loadTls({ cert: s.optionalString("tls-cert"), key: s.optionalString("tls-key"), ca: s.optionalString("tls-ca") });
  const tokenFile = s.optionalString("token-file");
  const health = s.optionalString("health-listen");
  return {
    auth: new Authenticator(tls, tokenFile ? new TokenStore(tokenFile) : undefined),
    insecureListen: s.bool("insecure-listen"),
    healthListen: health ? parseHostPort(health, "--health-listen") : undefined,
  };
}

export type { TlsMaterial };

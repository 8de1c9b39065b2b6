import { loadClientTls } from "../rpc/auth/tls.js";
import type { ClientCredentials } from "../rpc/client.js";

export type { ClientCredentials };

/** The files and token a service proves itself with: the CLI's --tls-cert, --tls-key, --tls-ca and --token. */
export interface CredentialFiles {
  readonly tlsCert?: string | undefined;
  readonly tlsKey?: string | undefined;
  readonly tlsCa?: string | undefined;
  readonly token?: string | undefined;
}

/** The environment variables the CLI reads, read the same way here. */
export const CREDENTIAL_ENV = {
  tlsCert: "AUTONOMY_TLS_CERT",
  tlsKey: "AUTONOMY_TLS_KEY",
  tlsCa: "AUTONOMY_TLS_CA",
  token: "AUTONOMY_TOKEN",
} as const;

/**
 * Reads the PEM files once, with the CLI's rules and messages: --tls-ca
 * alone verifies the server (a token holder needs no certificate),
 * --tls-cert and --tls-key go together. Nothing set: plaintext, no token.
 */
export function loadCredentials(files: CredentialFiles): ClientCredentials {
  const tls = loadClientTls({ cert: files.tlsCert || undefined, key: files.tlsKey || undefined, ca: files.tlsCa || undefined });
  const token = files.token?.trim() || undefined;
  return { ...(tls ? { tls } : {}), ...(token ? { token } : {}) };
}

/** loadCredentials from AUTONOMY_TLS_CERT, AUTONOMY_TLS_KEY, AUTONOMY_TLS_CA and AUTONOMY_TOKEN, as the CLI does. */
export function credentialsFromEnv(env: NodeJS.ProcessEnv = process.env): ClientCredentials {
  return loadCredentials({
    tlsCert: env[CREDENTIAL_ENV.tlsCert],
    tlsKey: env[CREDENTIAL_ENV.tlsKey],
    tlsCa: env[CREDENTIAL_ENV.tlsCa],
    token: env[CREDENTIAL_ENV.token],
  });
}

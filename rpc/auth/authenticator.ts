import { isIP } from "node:net";
import type { PeerCertificate } from "node:tls";
import { anonymousPrincipal, type Principal, type Role } from "./principal.js";
import type { TlsMaterial } from "./tls.js";
import type { TokenStore } from "./tokens.js";

/**
 * What a call needs: `health` is open to probes on loopback and to any
 * authenticated caller; the rest need that role.
 */
export type Access = "health" | Role;

/** Set by an agent that forwards an operator's admin call, naming the operator it authenticated. */
export const FORWARDED_PRINCIPAL_HEADER = "x-autonomy-forwarded-principal";

/** What the transport proved about one call. */
export interface CallCredentials {
  /** The peer certificate, only when the TLS handshake verified it against our CA. */
  readonly certificate: PeerCertificate | undefined;
  /** The Authorization header, e.g. "Bearer …". */
  readonly authorization: string | undefined;
  /** FORWARDED_PRINCIPAL_HEADER, honoured only from agents. */
  readonly forwarded: string | undefined;
  readonly remoteAddress: string | undefined;
}

export type AuthResult =
  | { readonly ok: true; readonly principal: Principal }
  | { readonly ok: false; readonly code: "unauthenticated" | "permission_denied"; readonly message: string };

const HOW_TO_AUTHENTICATE =
  "present a client certificate signed by this server's CA (--tls-cert/--tls-key/--tls-ca, env AUTONOMY_TLS_*) or a bearer token (--token, env AUTONOMY_TOKEN)";

/**
 * Turns what the transport proved (a verified client certificate, a bearer
 * token) into a principal and checks it against what the call needs. A
 * server started without credentials (loopback only) treats every caller as
 * the anonymous principal, as before authentication existed.
 */
export class Authenticator {
  constructor(
    readonly tls: TlsMaterial | undefined,
    readonly tokens: TokenStore | undefined,
  ) {}

  /** No credentials configured: nobody can be told apart. */
  get open(): boolean {
    return !this.tls && !this.tokens;
  }

  authorize(access: Access, creds: CallCredentials): AuthResult {
    if (this.open) return { ok: true, principal: anonymousPrincipal };
    const direct = this.identify(creds);
    if (direct && "error" in direct) return { ok: false, code: "unauthenticated", message: direct.error };
    if (!direct) {
      if (access === "health" && isLoopback(creds.remoteAddress)) return { ok: true, principal: loopbackProbe };
      return { ok: false, code: "unauthenticated", message: `no credentials: ${HOW_TO_AUTHENTICATE}` };
    }
    const principal = creds.forwarded && direct.roles.has("agent") ? forwardedBy(direct, creds.forwarded) : direct;
    if (access === "health" || principal.roles.has(access)) return { ok: true, principal };
    const has = [...principal.roles].join(", ") || "none";
    return { ok: false, code: "permission_denied", message: `${principal.name} may not make this call: it needs the ${access} role (${principal.name} has: ${has})` };
  }

  /** The caller's own identity: a token wins over a certificate, as the more deliberate of the two. */
  private identify(creds: CallCredentials): Principal | { error: string } | undefined {
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(creds.authorization ?? "");
    if (creds.authorization && !bearer) return { error: 'the Authorization header must be "Bearer TOKEN"' };
    if (bearer) {
      const entry = this.tokens?.lookup(bearer[1]!);
      if (!entry) {
        return { error: this.tokens ? "bearer token not recognised (tokens are read from the server's --token-file, reloaded on SIGHUP)" : "this server takes no bearer tokens (it has no --token-file); use a client certificate" };
      }
      return principalOf("token", `token:${entry.name}`, entry.role, entry.name);
    }
    const cert = creds.certificate;
    if (cert && this.tls) {
      const cn = first(cert.subject?.CN);
      if (!cn) return { error: "the client certificate has no subject CN; the CN names the node or the operator" };
      const ous = all(cert.subject?.OU);
      const role: Role = ous.includes("agent") ? "agent" : ous.includes("admin") ? "admin" : "read";
      return principalOf("certificate", `cert:CN=${cn}${ous.length ? `,OU=${ous.join("+")}` : ""}`, role, cn);
    }
    return undefined;
  }
}

/** A certificate's OU (or a token's role) → what it may do. admin and agent include read. */
function principalOf(kind: Principal["kind"], name: string, role: Role, subject: string): Principal {
  const roles = new Set<Role>(["read", role]);
  return { kind, name, roles, nodeId: role === "agent" ? subject : undefined };
}

const loopbackProbe: Principal = { kind: "anonymous", name: "loopback health probe", roles: new Set(), nodeId: undefined };

/**
 * An agent forwards an operator's call with its own credentials and names the
 * operator it authenticated. The operator keeps at most read and admin: an
 * agent can never lend its own agent role.
 */
function forwardedBy(agent: Principal, header: string): Principal {
  let claimed: { name?: unknown; roles?: unknown } = {};
  try {
    claimed = header.length <= 1000 ? (JSON.parse(header) as typeof claimed) : {};
  } catch {
    claimed = {};
  }
  const name = typeof claimed.name === "string" ? claimed.name.slice(0, 200) : "unknown";
  const roles = new Set<Role>(Array.isArray(claimed.roles) ? claimed.roles.filter((r): r is Role => r === "read" || r === "admin") : []);
  return { kind: agent.kind, name: `${name} via ${agent.name}`, roles, nodeId: undefined };
}

/** The header an agent sends when it forwards `principal`'s call. */
export function forwardedPrincipalHeader(principal: Principal): string {
  return JSON.stringify({ name: principal.name, roles: [...principal.roles].filter((r) => r !== "agent") });
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function all(v: string | string[] | undefined): string[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

/** 127.0.0.0/8, ::1 and IPv4-mapped loopback. */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.replace(/^::ffff:/i, "");
  return (isIP(a) === 4 && a.startsWith("127.")) || a === "::1";
}

/** A listen host that only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  return host === "localhost" || isLoopback(host);
}

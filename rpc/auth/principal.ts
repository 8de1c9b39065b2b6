/**
 * Who is calling, as proved by the transport: a client certificate, a bearer
 * token, or nothing (a loopback-only listener without credentials). Identity
 * is never taken from what a message or a client-set header says.
 */
export type Role = "read" | "admin" | "agent";

export interface Principal {
  /** How the caller proved who it is. */
  readonly kind: "certificate" | "token" | "anonymous";
  /** For the audit log and errors: "cert:CN=cp-node-1", "token:alice", "anonymous (loopback, no credentials)". */
  readonly name: string;
  /** What the caller may do. */
  readonly roles: ReadonlySet<Role>;
  /** The node id an agent certificate names; only then may the caller report as that node. */
  readonly nodeId: string | undefined;
}

/** Where the server puts the authenticated principal on a call's metadata object (a symbol no client can send). */
export const PRINCIPAL = Symbol("autonomy.principal");

/** A call that reached a handler without passing authentication may do nothing. */
export const noPrincipal: Principal = { kind: "anonymous", name: "unauthenticated", roles: new Set(), nodeId: undefined };

const everyRole: ReadonlySet<Role> = new Set<Role>(["read", "admin", "agent"]);

/**
 * A listener that runs without TLS or tokens (allowed on loopback only) has no
 * way to tell callers apart: every caller may do everything, as before
 * authentication existed. Its name says so in the audit log.
 */
export const anonymousPrincipal: Principal = {
  kind: "anonymous",
  name: "anonymous (no credentials configured)",
  roles: everyRole,
  nodeId: undefined,
};

export function hasRole(p: Principal, role: Role): boolean {
  return p.roles.has(role);
}

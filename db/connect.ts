import pg from "pg";
import { ErrorCode, HaError, invalidArgument, toHaError } from "../core/errors.js";

/**
 * A parsed libpq-style URL. node-postgres takes one host, so multi-host URLs
 * (postgres://u@h1:5432,h2:5432/db?target_session_attrs=read-write) are split
 * here into one URL per host and tried in order, as libpq does.
 */
export interface DatabaseTarget {
  readonly hosts: readonly string[];
  readonly urls: readonly string[];
  readonly targetSessionAttrs: "any" | "read-write" | "primary" | "read-only" | "standby";
}

const ATTRS = ["any", "read-write", "primary", "read-only", "standby"] as const;

export function parseDatabaseUrl(raw: string, what = "database URL"): DatabaseTarget {
  const m = /^(postgres(?:ql)?:\/\/)([^@/?]*@)?([^/?]*)(\/[^?]*)?(\?.*)?$/.exec(raw.trim());
  if (!m) throw invalidArgument(`${what} must look like postgres://user@host:5432/db, got "${redact(raw)}"`);
  const [, scheme, userinfo = "", hostList = "", path = "/postgres", query = ""] = m;
  const hosts = hostList.split(",").filter((h) => h !== "");
  if (hosts.length === 0) throw invalidArgument(`${what} names no host: "${redact(raw)}"`);
  const params = new URLSearchParams(query.replace(/^\?/, ""));
  const attrs = params.get("target_session_attrs") ?? "any";
  if (!(ATTRS as readonly string[]).includes(attrs)) {
    throw invalidArgument(`${what}: target_session_attrs=${attrs} is not one of ${ATTRS.join(", ")}`);
  }
  params.delete("target_session_attrs");
  const rest = params.toString();
  const urls = hosts.map((h) => `${scheme}${userinfo}${h}${path}${rest ? `?${rest}` : ""}`);
  return { hosts, urls, targetSessionAttrs: attrs as DatabaseTarget["targetSessionAttrs"] };
}

/** The URL with any password replaced, for messages and logs. */
export function redact(url: string): string {
  return url.replace(/(\/\/[^:@/]+:)[^@/]*@/, "$1***@");
}

export interface ConnectOptions {
  readonly applicationName: string;
  readonly connectTimeoutMs: number;
  /** TCP keepalive so a dead peer is noticed in seconds, not hours. */
  readonly keepAlive?: boolean;
  /** Ends a statement that runs (or waits for a reply) longer than this; none by default. */
  readonly statementTimeoutMs?: number;
  /** The session's lock_timeout, sent with the startup packet (no round trip); none by default. */
  readonly lockTimeoutMs?: number;
  /** More server settings for the session, also sent with the startup packet (as `options=-c name=value`). */
  readonly settings?: Readonly<Record<string, string>>;
  /**
   * Judges a host that passed target_session_attrs: a reason to refuse it
   * (say, a primary that a promotion superseded), or undefined to take it.
   */
  readonly accept?: (client: pg.Client, host: string) => Promise<string | undefined>;
}

/** A client whose socket errors are logged rather than crashing the process. */
export type Connected = pg.Client;

/**
 * Connects to the first host of `target` that satisfies its
 * target_session_attrs. Errors name every host tried and why it failed.
 */
export async function connectDatabase(
  target: DatabaseTarget,
  options: ConnectOptions,
  onError: (err: Error) => void,
): Promise<Connected> {
  const failures: string[] = [];
  for (let i = 0; i < target.urls.length; i++) {
    const client = new pg.Client({
      connectionString: target.urls[i],
      application_name: options.applicationName,
      connectionTimeoutMillis: options.connectTimeoutMs,
      keepAlive: options.keepAlive ?? true,
      keepAliveInitialDelayMillis: 1000,
      ...(options.statementTimeoutMs ? { statement_timeout: options.statementTimeoutMs, query_timeout: options.statementTimeoutMs + 1_000 } : {}),
      ...(options.lockTimeoutMs ? { lock_timeout: options.lockTimeoutMs } : {}),
      ...(options.settings ? { options: Object.entries(options.settings).map(([name, value]) => `-c ${name}=${value}`).join(" ") } : {}),
    });
    client.on("error", onError);
    try {
      await client.connect();
      if (target.targetSessionAttrs !== "any") {
        const r = await client.query<{ in_recovery: boolean }>("SELECT pg_is_in_recovery() AS in_recovery");
        const inRecovery = r.rows[0]!.in_recovery;
        const wantsPrimary = target.targetSessionAttrs === "read-write" || target.targetSessionAttrs === "primary";
        if (inRecovery === wantsPrimary) {
          failures.push(`${target.hosts[i]}: ${inRecovery ? "is a standby (in recovery)" : "is a primary"}`);
          await client.end().catch(() => undefined);
          continue;
        }
      }
      const refusal = await options.accept?.(client, target.hosts[i]!);
      if (refusal) {
        failures.push(`${target.hosts[i]}: ${refusal}`);
        await client.end().catch(() => undefined);
        continue;
      }
      return client;
    } catch (err) {
      failures.push(`${target.hosts[i]}: ${toHaError(err).message}`);
      await client.end().catch(() => undefined);
    }
  }
  const wanted = target.targetSessionAttrs === "any" ? "" : ` with target_session_attrs=${target.targetSessionAttrs}`;
  throw new HaError(ErrorCode.Unavailable, `cannot connect to the database${wanted}: ${failures.join("; ")}`);
}

import pg from "pg";
import { describeError } from "../core/errors.js";
import { readServerStanding, type ServerReading } from "./authority.js";
import type { DatabaseTarget } from "./connect.js";
import type { SchemaName } from "./identifiers.js";

/** What one host of the URL showed at the last look. */
export type HostReading =
  | { readonly host: string; readonly url: string; readonly reachable: true; readonly server: ServerReading }
  | { readonly host: string; readonly url: string; readonly reachable: false; readonly error: string };

export interface ServerScoutOptions {
  readonly target: DatabaseTarget;
  readonly schema: SchemaName;
  readonly clusterId: string;
  readonly applicationName: string;
  readonly connectTimeoutMs: number;
  /** Bounds each read, so one hung server does not stall the look at the others. */
  readonly statementTimeoutMs: number;
}

/**
 * Looks at every server a multi-host URL names, each through its own
 * connection, so the agent and the coordinator see a promoted server (and the
 * primary it left behind) directly instead of only the one libpq picked.
 */
export class ServerScout {
  private readonly clients = new Map<string, pg.Client>();

  constructor(private readonly o: ServerScoutOptions) {}

  get hosts(): readonly string[] {
    return this.o.target.hosts;
  }

  /** Reads every host at once; a host that fails is a reading (unreachable), never an exception. */
  look(): Promise<HostReading[]> {
    return Promise.all(this.o.target.urls.map((url, i) => this.read(this.o.target.hosts[i]!, url)));
  }

  /** The connection to `url`, for a statement the caller judged safe on that server (fencing it). */
  async clientFor(url: string): Promise<pg.Client> {
    let client = this.clients.get(url);
    if (client) return client;
    client = new pg.Client({
      connectionString: url,
      application_name: this.o.applicationName,
      connectionTimeoutMillis: this.o.connectTimeoutMs,
      statement_timeout: this.o.statementTimeoutMs,
      query_timeout: this.o.statementTimeoutMs + 1_000,
      keepAlive: true,
    });
    const c = client;
    c.on("error", () => this.forget(url, c));
    c.on("end", () => this.forget(url, c));
    this.clients.set(url, c);
    try {
      await c.connect();
    } catch (err) {
      this.forget(url, c);
      throw err;
    }
    return c;
  }

  private async read(host: string, url: string): Promise<HostReading> {
    try {
      const client = await this.clientFor(url);
      try {
        return { host, url, reachable: true, server: await readServerStanding(client, this.o.schema, this.o.clusterId) };
      } catch (err) {
        this.forget(url, client);
        throw err;
      }
    } catch (err) {
      return { host, url, reachable: false, error: describeError(err) };
    }
  }

  private forget(url: string, client: pg.Client): void {
    if (this.clients.get(url) !== client) return;
    this.clients.delete(url);
    void client.end().catch(() => undefined);
  }

  async close(): Promise<void> {
    const all = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(all.map((c) => c.end().catch(() => undefined)));
  }
}

import type pg from "pg";
import { ErrorCode, toHaError } from "../core/errors.js";
import { connectDatabase, type ConnectOptions, type DatabaseTarget } from "./connect.js";

/**
 * One lazily (re)connected client for reads and control statements that must
 * not queue behind the lock session: observing leadership_state, probes,
 * cancelling the lock session's wait, ending a hung holder's session. A
 * connection failure drops the client; the next query connects afresh (to
 * whichever host of a multi-host URL is now the right one).
 */
/** What the db/ helpers need of a connection: pg.Client, pg.Pool and SideConnection#db all fit. */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

export class SideConnection {
  private current: pg.Client | undefined;
  private pending: Promise<pg.Client> | undefined;
  /** Statements run one at a time: node-postgres will stop queueing them itself. */
  private tail: Promise<unknown> = Promise.resolve();
  /** Channels LISTENed on every connection this makes, with what each notice goes to. */
  private readonly channels = new Map<string, Subscription>();

  /** This connection as a Queryable for the db/ helpers, serialized like query(). */
  readonly db: Queryable = {
    query: <R extends pg.QueryResultRow>(text: string, values?: unknown[]) => this.serialized((c) => c.query<R>(text, values)),
  };

  constructor(
    private readonly target: DatabaseTarget,
    private readonly options: {
      applicationName: string;
      connectTimeoutMs: number;
      statementTimeoutMs?: number;
      onError?: (err: Error) => void;
      /** Judges each server before settling on it (connectDatabase's accept). */
      accept?: ConnectOptions["accept"];
    },
  ) {}

  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
    return (await this.serialized((c) => c.query<R>(sql, params))).rows;
  }

  private serialized<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
    const run = async () => {
      const client = await this.connected();
      try {
        return await work(client);
      } catch (err) {
        const e = toHaError(err);
        if (e.code === ErrorCode.Unavailable) this.drop(client);
        throw e;
      }
    };
    const result = this.tail.then(run, run);
    this.tail = result.catch(() => undefined);
    return result;
  }

  /** The connected client itself, for work that must own it (migrations at start-up). */
  connected(): Promise<pg.Client> {
    if (this.current) return Promise.resolve(this.current);
    this.pending ??= connectDatabase(
      this.target,
      // A half-open connection must not stall probes, commands and cancels for minutes.
      { applicationName: this.options.applicationName, connectTimeoutMs: this.options.connectTimeoutMs, statementTimeoutMs: this.options.statementTimeoutMs ?? 5_000, accept: this.options.accept },
      (err) => {
        this.options.onError?.(err);
        if (this.current) this.drop(this.current);
      },
    ).then(
      (client) => {
        this.pending = undefined;
        this.current = client;
        client.on("notification", (n) => this.channels.get(n.channel)?.notice(n.payload));
        for (const channel of this.channels.keys()) this.subscribe(client, channel);
        return client;
      },
      (err: unknown) => {
        this.pending = undefined;
        throw err;
      },
    );
    return this.pending;
  }

  /**
   * LISTENs on `channel` now and on every later connection. Best effort: a
   * server that refuses LISTEN (a standby) leaves the caller to its polling.
   * Notices sent while no connection was listening are lost, so `listening`
   * is called each time LISTEN takes effect: read then what may have changed.
   */
  listen(channel: string, subscription: Subscription): void {
    this.channels.set(channel, subscription);
    if (this.current) this.subscribe(this.current, channel);
  }

  private subscribe(client: pg.Client, channel: string): void {
    void this.serialized(async (c) => {
      // Queued behind other statements: the connection may have changed since.
      if (c !== client) return;
      await c.query(`LISTEN ${c.escapeIdentifier(channel)}`);
      this.channels.get(channel)?.listening();
    }).catch((err: unknown) => this.channels.get(channel)?.failed(toHaError(err)));
  }

  private drop(client: pg.Client): void {
    if (this.current === client) this.current = undefined;
    void client.end().catch(() => undefined);
  }

  async close(): Promise<void> {
    const client = this.current ?? (await this.pending?.catch(() => undefined));
    this.current = undefined;
    await client?.end().catch(() => undefined);
  }
}

/** What a LISTEN on the side connection reports to. */
export interface Subscription {
  /** A notice arrived, with its payload (any session may NOTIFY: a hint, not a fact). */
  notice(payload: string | undefined): void;
  /** LISTEN took effect on a (new) connection. */
  listening(): void;
  /** LISTEN failed on a connection. */
  failed(err: Error): void;
}

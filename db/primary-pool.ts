import pg from "pg";
import { redact } from "./connect.js";
import type { Queryable } from "./side-connection.js";

/**
 * A connection pool that follows the authoritative primary: node-postgres
 * pools take one host, so with a multi-host --database-url the coordinator
 * points this at whichever host its scout judged authoritative, and moves it
 * when a promotion changes that. Connections already handed out finish on the
 * old pool, which is then ended.
 */
export class PrimaryPool implements Queryable {
  private pool: pg.Pool;
  private url: string;

  constructor(
    url: string,
    private readonly make: (url: string) => pg.Pool,
  ) {
    this.url = url;
    this.pool = make(url);
  }

  /** The URL the pool connects to now (password redacted). */
  get target(): string {
    return redact(this.url);
  }

  /** The URL the pool connects to now, with its password: for a session of the caller's own. */
  get connectionUrl(): string {
    return this.url;
  }

  /** Moves the pool to `url`; returns whether it changed. */
  follow(url: string): boolean {
    if (url === this.url) return false;
    const old = this.pool;
    this.url = url;
    this.pool = this.make(url);
    void old.end().catch(() => undefined);
    return true;
  }

  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    return this.pool.query<R>(text, values);
  }

  connect(): Promise<pg.PoolClient> {
    return this.pool.connect();
  }

  end(): Promise<void> {
    return this.pool.end();
  }
}

import type pg from "pg";
import { ErrorCode, toHaError } from "../core/errors.js";
import { connectDatabase, type DatabaseTarget } from "./connect.js";

/**
 * One lazily (re)connected client for reads and control statements that must
 * not queue behind the lock session: observing leadership_state, probes,
 * cancelling the lock session's wait, ending a hung holder's session. A
 * connection failure drops the client; the next query connects afresh (to
 * whichever host of a multi-host URL is now the right one).
 */
export class SideConnection {
  private current: pg.Client | undefined;
  private pending: Promise<pg.Client> | undefined;

  constructor(
    private readonly target: DatabaseTarget,
    private readonly options: { applicationName: string; connectTimeoutMs: number; onError?: (err: Error) => void },
  ) {}

  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
    const client = await this.connected();
    try {
      return (await client.query<R>(sql, params)).rows;
    } catch (err) {
      const e = toHaError(err);
      if (e.code === ErrorCode.Unavailable) this.drop(client);
      throw e;
    }
  }

  /** A connected client for helpers that take a pg client (db/leadership.ts). */
  connected(): Promise<pg.Client> {
    if (this.current) return Promise.resolve(this.current);
    this.pending ??= connectDatabase(
      this.target,
      { applicationName: this.options.applicationName, connectTimeoutMs: this.options.connectTimeoutMs },
      (err) => {
        this.options.onError?.(err);
        if (this.current) this.drop(this.current);
      },
    ).then(
      (client) => {
        this.pending = undefined;
        this.current = client;
        return client;
      },
      (err: unknown) => {
        this.pending = undefined;
        throw err;
      },
    );
    return this.pending;
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

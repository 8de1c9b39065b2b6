import type pg from "pg";
import { connectDatabase, parseDatabaseUrl, type DatabaseTarget } from "../../db/connect.js";

/** One write that committed, timed on this process's performance.now(). */
export interface Commit {
  readonly node: string;
  /** host:port of the server it committed on. */
  readonly server: string;
  readonly epoch: number;
  readonly committedAt: number;
}

/** The statements of one write; `epoch` is what the writer was told its term is (0: no fencing token). */
export type WriteStatements = (client: pg.Client, node: string, epoch: number) => Promise<void>;

/**
 * A node's application: writes back to back while it holds a permit (its
 * election says it leads), idle otherwise, keeping every commit. Whoever
 * follows the election hands out the permit; the loop reacts at once.
 */
export class WriteLoop {
  readonly commits: Commit[] = [];
  errors = 0;
  private permit: { epoch: number } | undefined;
  private readonly target: DatabaseTarget;
  private client: pg.Client | undefined;
  private server = "";
  private stopped = false;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;

  constructor(
    readonly node: string,
    databaseUrl: string,
    private readonly write: WriteStatements,
  ) {
    this.target = parseDatabaseUrl(databaseUrl);
  }

  start(): this {
    this.loop ??= this.run();
    return this;
  }

  /** Lead (with the term's fencing token) or stop writing (undefined). */
  setPermit(permit: { epoch: number } | undefined): void {
    this.permit = permit;
    this.wake?.();
  }

  get writing(): boolean {
    return this.permit !== undefined;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
    await this.drop();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const permit = this.permit;
      if (!permit) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        continue;
      }
      try {
        const client = await this.connected();
        await this.write(client, this.node, permit.epoch);
        this.commits.push({ node: this.node, server: this.server, epoch: permit.epoch, committedAt: performance.now() });
      } catch {
        // A stale epoch, a killed server, a standby: reconnect and try again, as an application would.
        this.errors++;
        await this.drop();
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  }

  private async connected(): Promise<pg.Client> {
    if (this.client) return this.client;
    const client = await connectDatabase(this.target, { applicationName: `bench-writer-${this.node}`, connectTimeoutMs: 2_000, statementTimeoutMs: 5_000 }, () => {
      if (this.client === client) this.client = undefined;
    });
    this.client = client;
    this.server = `${client.host}:${client.port}`;
    return client;
  }

  private async drop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }
}

/** The first commit at or after `since` that matches, by commit time. */
export function firstCommit(loops: readonly WriteLoop[], since: number, match: (c: Commit) => boolean): Commit | undefined {
  let first: Commit | undefined;
  for (const l of loops) for (const c of l.commits) if (c.committedAt >= since && match(c) && (!first || c.committedAt < first.committedAt)) first = c;
  return first;
}

/** The last commit before `before` that matches. */
export function lastCommit(loops: readonly WriteLoop[], before: number, match: (c: Commit) => boolean): Commit | undefined {
  let last: Commit | undefined;
  for (const l of loops) for (const c of l.commits) if (c.committedAt < before && match(c) && (!last || c.committedAt > last.committedAt)) last = c;
  return last;
}

export const WRITES_TABLE = "peer_writes";
export const CREATE_WRITES_TABLE = `CREATE TABLE IF NOT EXISTS ${WRITES_TABLE} (id bigserial PRIMARY KEY, node text NOT NULL, epoch bigint NOT NULL, written_at timestamptz NOT NULL DEFAULT clock_timestamp())`;

/** An unfenced write: what an application under Patroni or an etcd election does (it has no token the database checks). */
export const plainInsert: WriteStatements = async (client, node, epoch) => {
  await client.query(`INSERT INTO ${WRITES_TABLE} (node, epoch) VALUES ($1, $2)`, [node, epoch]);
};

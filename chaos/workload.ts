// The application next to each agent, written on the client library as a
// user would write it: whileLeader runs the writer while its node leads, and
// every write is one fencedTransaction (assert_epoch and the insert in one
// transaction) sent to whichever server the harness says is the primary.
// Every attempt and its outcome is recorded.

import { systemClock } from "../core/clock.js";
import pg from "pg";
import { fencedTransaction, StaleEpochError, whileLeader } from "../client/index.js";
import type { PgServer } from "../pgcluster/index.js";
import type { WriteAttempt, WriteOutcome } from "./history.js";

export const WRITES_TABLE = "chaos_writes";

export async function createWritesTable(primary: PgServer): Promise<void> {
  await primary.query(`CREATE TABLE IF NOT EXISTS ${WRITES_TABLE} (
    id text PRIMARY KEY,
    node_id text NOT NULL,
    epoch bigint NOT NULL,
    written_at timestamptz NOT NULL DEFAULT clock_timestamp())`);
}

export interface WorkloadOptions {
  readonly nodes: readonly { nodeId: string; url: string }[];
  /** The server writes go to now. */
  readonly primary: () => PgServer;
  /** How long each transaction sleeps inside (the --slow-writes baseline). */
  readonly slowWritesMs: number;
  readonly intervalMs?: number;
  readonly log: (line: string) => void;
}

export class Workload {
  readonly attempts: WriteAttempt[] = [];
  /** Raised by a slow-writes fault for its duration. */
  extraSleepMs = 0;
  private readonly stopped = new AbortController();
  private readonly pools = new Map<string, pg.Pool>();
  private loops: Promise<void>[] = [];
  private sequence = 0;

  constructor(private readonly options: WorkloadOptions) {}

  start(): void {
    this.loops = this.options.nodes.map((n) => this.writer(n.nodeId, n.url));
  }

  async stop(): Promise<void> {
    this.stopped.abort();
    await Promise.allSettled(this.loops);
    await Promise.allSettled([...this.pools.values()].map((p) => p.end()));
  }

  private pool(server: PgServer): pg.Pool {
    const key = `${server.name}:${server.port}`;
    let pool = this.pools.get(key);
    if (!pool) {
      pool = new pg.Pool({
        connectionString: server.url(),
        max: 4,
        application_name: "chaos/workload",
        connectionTimeoutMillis: 3_000,
        // A server that hangs (paused, locked) must not hang the writer forever.
        query_timeout: 15_000,
      });
      pool.on("error", () => undefined);
      this.pools.set(key, pool);
    }
    return pool;
  }

  private async writer(nodeId: string, agentUrl: string): Promise<void> {
    const interval = this.options.intervalMs ?? 50;
    while (!this.stopped.signal.aborted) {
      try {
        await whileLeader(
          { agentUrl, nodeId, signal: this.stopped.signal, name: `chaos writer ${nodeId}`, log: (line) => this.options.log(line) },
          async ({ epoch, signal }) => {
            while (!signal.aborted) {
              await this.write(nodeId, epoch);
              await sleep(interval, signal);
            }
          },
        );
      } catch (err) {
        this.options.log(`${nodeId}: writer stopped: ${(err as Error).message}; starting again`);
        await sleep(500, this.stopped.signal);
      }
    }
  }

  private async write(nodeId: string, epoch: number): Promise<void> {
    const server = this.options.primary();
    const id = `${nodeId}-${++this.sequence}`;
    const sleepMs = this.options.slowWritesMs + this.extraSleepMs;
    const startedAt = Date.now();
    let outcome: WriteOutcome = "ack";
    let error: string | undefined;
    try {
      await fencedTransaction(this.pool(server), epoch, async (client) => {
        if (sleepMs > 0) await client.query("SELECT pg_sleep($1)", [sleepMs / 1000]);
        await client.query(`INSERT INTO ${WRITES_TABLE} (id, node_id, epoch) VALUES ($1, $2, $3)`, [id, nodeId, epoch]);
      });
    } catch (err) {
      outcome = err instanceof StaleEpochError ? "stale" : "error";
      error = (err as Error).message.slice(0, 300);
    }
    this.attempts.push({ id, nodeId, epoch, server: server.name, startedAt, endedAt: Date.now(), outcome, ...(error ? { error } : {}) });
  }
}

/** Waits ms, or less when `signal` aborts (stopping is not an error here). */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return systemClock.sleep(ms, signal).catch(() => undefined);
}

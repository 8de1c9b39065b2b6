import pg from "pg";
import { describeError } from "../../core/errors.js";
import { silentLogger } from "../../core/log.js";
import { parseDatabaseUrl } from "../../db/connect.js";
import { DatabaseAuthority } from "../../db/database-authority.js";
import { DEFAULT_CLUSTER_ID, SchemaName } from "../../db/identifiers.js";
import { fencedTransaction, StaleEpochError, whileLeader, type ClientCredentials } from "../../client/index.js";

export interface WorkloadCounters {
  written: number;
  staleRejected: number;
  failed: number;
  lastRejection: string;
}

/** What the seed's control plane calls its leader-only work; runbook 000 §5 greps its logs for it. */
export const PROMOTER_NAME = "cprollout: batch promoter";

/**
 * A stand-in for the control-plane process next to each agent, written on
 * the client library as a real one would be: whileLeader runs its batch
 * promoter exactly while its node holds write authority (logging
 * "cprollout: batch promoter started" and "… stopped"), and every promotion
 * decision is written with fencedTransaction, so assert_epoch() checks the
 * epoch in the same transaction. A write carrying an epoch that has just
 * ended is rejected by the database, which is the fence doing its job; the
 * counters show it.
 */
export class DemoWorkload {
  readonly counters: WorkloadCounters = { written: 0, staleRejected: 0, failed: 0, lastRejection: "" };
  private readonly stopped = new AbortController();
  private loops: Promise<void>[] = [];

  /**
   * `log` gets the promoters' start and stop lines; by default they go to
   * stdout as "autonomy dev: …" lines unless stdout is a terminal, where the
   * live view is drawn instead.
   */
  constructor(
    private readonly databaseUrl: string,
    private readonly nodes: readonly { nodeId: string; url: string }[],
    private readonly credentials: ClientCredentials = {},
    private readonly intervalMs = 250,
    private readonly log: (line: string) => void = defaultLog,
  ) {}

  async start(): Promise<void> {
    const db = new pg.Client({ connectionString: await this.primaryUrl(), application_name: "autonomy-dev/workload" });
    await db.connect();
    try {
      await db.query(`CREATE TABLE IF NOT EXISTS promotion_decisions (
        id bigserial PRIMARY KEY,
        epoch bigint NOT NULL,
        decided_by text NOT NULL,
        subject text NOT NULL,
        decided_at timestamptz NOT NULL DEFAULT now())`);
    } finally {
      await db.end();
    }
    this.loops = this.nodes.map((n) => this.promoter(n));
  }

  async stop(): Promise<void> {
    this.stopped.abort();
    await Promise.allSettled(this.loops);
  }

  /**
   * The authoritative writable server among the URL's hosts, as the agents
   * judge it (db/database-authority.ts): after `autonomy dev promote` the
   * leader's writes go to the promoted server, never to the old primary.
   */
  private async primaryUrl(): Promise<string> {
    const target = parseDatabaseUrl(this.databaseUrl, "workload database URL");
    if (target.urls.length === 1) return target.urls[0]!;
    const authority = new DatabaseAuthority({ target, schema: new SchemaName("public"), clusterId: DEFAULT_CLUSTER_ID, nodeId: "autonomy-dev/workload", connectTimeoutMs: 3_000, log: silentLogger(), changed: () => undefined });
    try {
      await authority.look();
      return authority.authoritativeHost()?.url ?? target.urls[0]!;
    } finally {
      await authority.close();
    }
  }

  private async promoter(node: { nodeId: string; url: string }): Promise<void> {
    let seq = 0;
    try {
      await whileLeader(
        {
          agentUrl: node.url,
          nodeId: node.nodeId,
          signal: this.stopped.signal,
          credentials: this.credentials,
          name: PROMOTER_NAME,
          log: (line) => this.log(`${node.nodeId}: ${line}`),
        },
        async ({ epoch, signal }) => {
          // Each term writes to the primary of its time.
          const pool = new pg.Pool({ connectionString: await this.primaryUrl(), max: 1, application_name: `${node.nodeId}/workload` });
          pool.on("error", () => undefined);
          try {
            while (!signal.aborted) {
              await this.decide(pool, node.nodeId, epoch, ++seq);
              await sleep(this.intervalMs, signal);
            }
          } finally {
            await pool.end().catch(() => undefined);
          }
        },
      );
    } catch (err) {
      this.log(`${node.nodeId}: ${PROMOTER_NAME} gave up: ${describeError(err)}`);
    }
  }

  private async decide(pool: pg.Pool, nodeId: string, epoch: number, seq: number): Promise<void> {
    try {
      await fencedTransaction(pool, epoch, (client) =>
        client.query("INSERT INTO promotion_decisions (epoch, decided_by, subject) VALUES ($1, $2, $3)", [epoch, nodeId, `rollout-${seq}`]),
      );
      this.counters.written++;
    } catch (err) {
      if (err instanceof StaleEpochError) {
        this.counters.staleRejected++;
        this.counters.lastRejection = `${nodeId}: ${describeError(err)}`;
      } else {
        this.counters.failed++;
      }
    }
  }
}

function defaultLog(line: string): void {
  if (process.stdout.isTTY !== true) process.stdout.write(`autonomy dev: ${line}\n`);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

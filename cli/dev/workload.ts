import pg from "pg";
import { LeaderService } from "../../gen/autonomy/ha/v1/leader_pb.js";
import { describeError } from "../../core/errors.js";
import { STALE_EPOCH_SQLSTATE } from "../../core/errors.js";
import { clientFor, type ClientCredentials } from "../../rpc/client.js";

export interface WorkloadCounters {
  written: number;
  staleRejected: number;
  failed: number;
  lastRejection: string;
}

/**
 * A stand-in for the control-plane process next to each agent: it follows its
 * own agent's leader stream and, while its node holds the lock, records
 * promotion decisions fenced by assert_epoch() inside the same transaction.
 * A write carrying an epoch that has just ended is rejected by the database,
 * which is the fence doing its job; the counters show it.
 */
export class DemoWorkload {
  readonly counters: WorkloadCounters = { written: 0, staleRejected: 0, failed: 0, lastRejection: "" };
  private readonly stopped = new AbortController();
  private loops: Promise<void>[] = [];

  constructor(
    private readonly databaseUrl: string,
    private readonly nodes: readonly { nodeId: string; url: string }[],
    private readonly credentials: ClientCredentials = {},
    private readonly intervalMs = 250,
  ) {}

  async start(): Promise<void> {
    const db = new pg.Client({ connectionString: this.databaseUrl, application_name: "autonomy-dev/workload" });
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
    this.loops = this.nodes.map((n) => this.follow(n));
  }

  async stop(): Promise<void> {
    this.stopped.abort();
    await Promise.allSettled(this.loops);
  }

  private async follow(node: { nodeId: string; url: string }): Promise<void> {
    const signal = this.stopped.signal;
    let epoch = 0;
    let mine = false;
    const leaders = clientFor(LeaderService, node.url, { credentials: this.credentials });
    const watching = (async () => {
      while (!signal.aborted) {
        try {
          for await (const e of leaders.watchLeader({}, { signal })) {
            mine = e.leader?.holderId === node.nodeId && e.leader.writeReady;
            if (mine) epoch = Number(e.leader!.epoch);
          }
        } catch {
          mine = false;
          await sleep(500, signal);
        }
      }
    })();
    const db = new pg.Pool({ connectionString: this.databaseUrl, max: 1, application_name: `${node.nodeId}/workload` });
    db.on("error", () => undefined);
    let seq = 0;
    while (!signal.aborted) {
      if (mine) await this.decide(db, node.nodeId, epoch, ++seq);
      await sleep(this.intervalMs, signal);
    }
    await watching;
    await db.end().catch(() => undefined);
  }

  private async decide(db: pg.Pool, nodeId: string, epoch: number, seq: number): Promise<void> {
    const client = await db.connect().catch(() => undefined);
    if (!client) return void this.counters.failed++;
    try {
      await client.query("BEGIN");
      await client.query("SELECT assert_epoch($1)", [epoch]);
      await client.query("INSERT INTO promotion_decisions (epoch, decided_by, subject) VALUES ($1, $2, $3)", [epoch, nodeId, `rollout-${seq}`]);
      await client.query("COMMIT");
      this.counters.written++;
    } catch (err) {
      await client.query("ROLLBACK").catch(() => undefined);
      if ((err as { code?: string }).code === STALE_EPOCH_SQLSTATE) {
        this.counters.staleRejected++;
        this.counters.lastRejection = `${nodeId}: ${describeError(err)}`;
      } else {
        this.counters.failed++;
      }
    } finally {
      client.release();
    }
  }
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

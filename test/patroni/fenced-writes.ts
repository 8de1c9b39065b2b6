// The application side of a failover: one writer per node doing fenced
// writes back to back whenever its agent says it is Write-Ready, and a
// sampler of every agent's /v1/health/leader. Both keep everything they saw,
// with timestamps, so a test or a benchmark can judge the run afterwards.

import pg from "pg";
import { connectDatabase, parseDatabaseUrl, type DatabaseTarget } from "../../db/connect.js";
import type { AgentProcess, LeaderHealth } from "../support/agents.js";

/** Milliseconds on one clock shared by writers, sampler and the test. */
export const now = (): number => performance.timeOrigin + performance.now();

export const WRITES_TABLE = "fenced_writes";

/** One fenced write that committed. */
export interface Commit {
  /** The row's id in the writes table. */
  readonly id: string;
  readonly node: string;
  readonly epoch: number;
  /** host:port of the server the transaction ran on. */
  readonly server: string;
  readonly startedAt: number;
  readonly committedAt: number;
}

/** One fenced write that did not commit, and why. */
export interface Failure {
  readonly node: string;
  readonly epoch: number;
  readonly at: number;
  /** SQLSTATE (AH001 = stale epoch) or the error's message. */
  readonly code: string;
}

/** Creates the table the writers insert into (on the primary; Patroni's replicas get it by streaming). */
export async function createWritesTable(primaryUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: primaryUrl });
  client.on("error", () => {});
  await client.connect();
  try {
    await client.query(`CREATE TABLE IF NOT EXISTS ${WRITES_TABLE} (id bigserial PRIMARY KEY, node text NOT NULL, epoch bigint NOT NULL, written_at timestamptz NOT NULL DEFAULT clock_timestamp())`);
  } finally {
    await client.end();
  }
}

/**
 * A node's application: `BEGIN; SELECT assert_epoch($epoch); INSERT …;
 * COMMIT` back to back while its agent's /v1/health/leader says this node is
 * Write-Ready, with the epoch read from there. It connects through the same
 * multi-host URL as the agents, so it too finds whichever server is writable.
 */
export class FencedWriter {
  readonly commits: Commit[] = [];
  readonly failures: Failure[] = [];
  private readonly target: DatabaseTarget;
  private client: pg.Client | undefined;
  private server = "";
  private stopped = false;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly agent: AgentProcess,
    databaseUrl: string,
  ) {
    this.target = parseDatabaseUrl(databaseUrl);
  }

  start(): this {
    this.loop ??= this.run();
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    await this.dropClient();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const health = await this.agent.leader();
      if (!health?.write_ready || health.holder_id !== this.agent.nodeId) {
        await pause(20);
        continue;
      }
      await this.writeOnce(health.current_epoch);
    }
  }

  private async writeOnce(epoch: number): Promise<void> {
    const startedAt = now();
    try {
      const client = await this.connected();
      await client.query("BEGIN");
      await client.query("SELECT assert_epoch($1)", [epoch]);
      const inserted = await client.query<{ id: string }>(`INSERT INTO ${WRITES_TABLE} (node, epoch) VALUES ($1, $2) RETURNING id`, [this.agent.nodeId, epoch]);
      await client.query("COMMIT");
      this.commits.push({ id: inserted.rows[0]!.id, node: this.agent.nodeId, epoch, server: this.server, startedAt, committedAt: now() });
    } catch (err) {
      const code = (err as { code?: string }).code ?? (err as Error).message;
      this.failures.push({ node: this.agent.nodeId, epoch, at: now(), code });
      // A rejected epoch leaves the session usable; anything else may not have.
      if (code === "AH001" && this.client) await this.client.query("ROLLBACK").catch(() => this.dropClient());
      else await this.dropClient();
      await pause(20);
    }
  }

  private async connected(): Promise<pg.Client> {
    if (this.client) return this.client;
    const client = await connectDatabase(this.target, { applicationName: `writer-${this.agent.nodeId}`, connectTimeoutMs: 2_000, statementTimeoutMs: 5_000 }, () => {
      // The socket died (the server was killed): the next write reconnects.
      if (this.client === client) this.client = undefined;
    });
    this.client = client;
    this.server = `${client.host}:${client.port}`;
    return client;
  }

  private async dropClient(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }
}

/** What one sample of every agent's /v1/health/leader said. */
export interface Sample {
  readonly startedAt: number;
  readonly endedAt: number;
  /** The nodes that said they are Write-Ready, with their epochs. */
  readonly writeReady: { node: string; epoch: number }[];
  /** Every answer (undefined: the agent did not answer). */
  readonly answers: (LeaderHealth | undefined)[];
}

/** Asks every agent for /v1/health/leader at once, over and over. */
export class LeaderSampler {
  readonly samples: Sample[] = [];
  private stopped = false;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly agents: readonly AgentProcess[],
    private readonly intervalMs = 25,
  ) {}

  start(): this {
    this.loop ??= this.run();
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const startedAt = now();
      const answers = await Promise.all(this.agents.map((a) => a.leader()));
      const writeReady = answers.flatMap((h, i) => (h?.write_ready ? [{ node: this.agents[i]!.nodeId, epoch: h.current_epoch }] : []));
      this.samples.push({ startedAt, endedAt: now(), writeReady, answers });
      await pause(this.intervalMs);
    }
  }
}

/** Samples in which more than one agent said it was Write-Ready. */
export function overlaps(samples: readonly Sample[]): Sample[] {
  return samples.filter((s) => s.writeReady.length > 1);
}

/** Places where an epoch fell: a Write-Ready epoch, or a committed one, below an earlier one. */
export function epochDrops(samples: readonly Sample[], commits: readonly Commit[]): string[] {
  const drops: string[] = [];
  let highest = 0;
  for (const s of samples) {
    for (const w of s.writeReady) {
      if (w.epoch < highest) drops.push(`${w.node} Write-Ready at epoch ${w.epoch} after epoch ${highest} (sample at ${iso(s.startedAt)})`);
      highest = Math.max(highest, w.epoch);
    }
  }
  highest = 0;
  for (const c of [...commits].sort((a, b) => a.committedAt - b.committedAt)) {
    if (c.epoch < highest) drops.push(`${c.node} committed at epoch ${c.epoch} on ${c.server} after epoch ${highest} (${iso(c.committedAt)})`);
    highest = Math.max(highest, c.epoch);
  }
  return drops;
}

export function allCommits(writers: readonly FencedWriter[]): Commit[] {
  return writers.flatMap((w) => w.commits).sort((a, b) => a.committedAt - b.committedAt);
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { waitFor } from "../../core/clock.js";
import { freePort, startPgCluster, type PgCluster } from "../../pgcluster/index.js";
import { FAST_TIMINGS } from "../support/agents.js";
import { getJson, spawnAutonomy, waitHealthy, type AutonomyProcess } from "../support/processes.js";

/*
 * A real cluster for the client library's tests: a PostgreSQL primary and a
 * streaming standby, a coordinator and three agents on fixed ports (so a
 * killed process can come back at the URL its clients know), with timings
 * short enough for tests. Agents end a hung leader's session after 3 s and
 * the coordinator judges a silent leader dead after 3 s, both well past the
 * agents' 1.5 s lease.
 */

const COORDINATOR_TIMINGS = ["--poll-interval", "100ms", "--failure-timeout", "3s", "--report-stale-after", "1500ms", "--intruder-grace", "1500ms", "--failover-cooldown", "0s"];
const AGENT_EXTRA = ["--takeover-after", "3s"];
/** The agents' --lease in FAST_TIMINGS, which whileLeader is told. */
export const AGENT_LEASE_MS = 1_500;

export interface NodeSpec {
  readonly nodeId: string;
  readonly port: number;
  readonly priority: number;
  readonly localUrl: string | undefined;
}

export class ClientTestCluster {
  coordinator!: AutonomyProcess;
  readonly agents = new Map<string, AutonomyProcess>();
  readonly nodes: NodeSpec[] = [];
  coordinatorPort = 0;
  private auditDir = "";

  private constructor(readonly pg: PgCluster) {}

  static async start(): Promise<ClientTestCluster> {
    const c = new ClientTestCluster(await startPgCluster({ standbys: 1 }));
    try {
      c.auditDir = await mkdtemp(path.join(os.tmpdir(), "autonomy-client-audit-"));
      c.coordinatorPort = await freePort();
      await c.startCoordinator();
      const locals = [c.pg.primary.url(), c.pg.standby.url(), undefined];
      for (let i = 0; i < 3; i++) c.nodes.push({ nodeId: `cp-node-${i + 1}`, port: await freePort(), priority: 300 - 100 * i, localUrl: locals[i] });
      await Promise.all(c.nodes.map((n) => c.startAgent(n.nodeId)));
      return c;
    } catch (err) {
      await c.close();
      throw err;
    }
  }

  get coordinatorUrl(): string {
    return `http://127.0.0.1:${this.coordinatorPort}`;
  }

  get primaryUrl(): string {
    return this.pg.primary.url();
  }

  /** The agents find the primary among both servers, as `autonomy dev` does. */
  get lockUrl(): string {
    return `postgres://postgres@127.0.0.1:${this.pg.primary.port},127.0.0.1:${this.pg.standby.port}/postgres?target_session_attrs=read-write`;
  }

  agentUrl(nodeId: string): string {
    return `http://127.0.0.1:${this.node(nodeId).port}`;
  }

  node(nodeId: string): NodeSpec {
    const n = this.nodes.find((x) => x.nodeId === nodeId);
    if (!n) throw new Error(`no node ${nodeId}`);
    return n;
  }

  async startCoordinator(): Promise<void> {
    this.coordinator = spawnAutonomy("coordinator", [
      "coordinator", "--database-url", this.primaryUrl, "--listen", `127.0.0.1:${this.coordinatorPort}`, "--audit-dir", this.auditDir, ...COORDINATOR_TIMINGS,
    ]);
    await waitHealthy(this.coordinator, this.coordinatorUrl);
  }

  /** Starts (or starts again, at the same URL) one agent. */
  async startAgent(nodeId: string): Promise<void> {
    const n = this.node(nodeId);
    const proc = spawnAutonomy(nodeId, [
      "agent", "--node-id", nodeId, "--database-url", this.lockUrl, "--listen", `127.0.0.1:${n.port}`, "--coordinator-url", this.coordinatorUrl,
      "--priority", String(n.priority), ...(n.localUrl ? ["--local-database-url", n.localUrl] : []), ...FAST_TIMINGS, ...AGENT_EXTRA,
    ]);
    this.agents.set(nodeId, proc);
    await waitHealthy(proc, this.agentUrl(nodeId));
  }

  agent(nodeId: string): AutonomyProcess {
    return this.agents.get(nodeId)!;
  }

  /** The coordinator's Write-Ready leader, once there is one with an epoch above `above`. */
  async leader(above = 0, timeoutMs = 30_000): Promise<{ holder_id: string; current_epoch: number }> {
    return waitFor(
      async () => {
        const l = (await getJson<{ holder_id: string; current_epoch: number; write_ready: boolean }>(`${this.coordinatorUrl}/v1/health/leader`))?.body;
        return l && l.holder_id && l.write_ready && l.current_epoch > above ? l : undefined;
      },
      { timeoutMs, what: `a Write-Ready leader above epoch ${above}` },
    );
  }

  /** The database's own word: who holds which epoch, oldest first. */
  async epochs(): Promise<{ epoch: number; holder_id: string; acquired_at: Date; resigned_at: Date | null }[]> {
    const r = await this.sql<{ epoch: string; holder_id: string; acquired_at: Date; resigned_at: Date | null }>(
      "SELECT epoch, holder_id, acquired_at, resigned_at FROM leader_epochs WHERE cluster_id = 'default' ORDER BY epoch",
    );
    return r.rows.map((e) => ({ ...e, epoch: Number(e.epoch) }));
  }

  async sql<R extends pg.QueryResultRow = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<pg.QueryResult<R>> {
    const client = new pg.Client({ connectionString: this.primaryUrl, application_name: "client-test" });
    await client.connect();
    try {
      return await client.query<R>(text, params);
    } finally {
      await client.end();
    }
  }

  /** The last lines of every process, for failure messages. */
  evidence(): string {
    return [this.coordinator, ...this.agents.values()].map((p) => `--- ${p.name} ---\n${p.tail(60)}`).join("\n");
  }

  async close(): Promise<void> {
    await Promise.all([...this.agents.values()].map((a) => a.stop()));
    await this.coordinator?.stop();
    await this.pg.close();
    if (this.auditDir) await rm(this.auditDir, { recursive: true, force: true });
  }
}

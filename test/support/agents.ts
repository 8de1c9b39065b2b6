import pg from "pg";
import { afterAll, afterEach, beforeAll } from "vitest";
import { waitFor } from "../../core/clock.js";
import { freePort, startPgCluster, type PgCluster } from "../../pgcluster/index.js";
import { activePki } from "./pki.js";
import { AutonomyProcess, getJson, spawnAutonomy, waitHealthy } from "./processes.js";

export interface LeaderHealth {
  holder_id: string;
  current_epoch: number;
  session_lock_held: boolean;
  write_ready: boolean;
  node_id: string;
  role: string;
}

export interface AgentOptions {
  readonly nodeId: string;
  readonly databaseUrl: string;
  readonly localDatabaseUrl?: string;
  readonly coordinatorUrl?: string;
  readonly priority?: number;
  readonly nofailover?: boolean;
  readonly successor?: boolean;
  /** Extra flags, e.g. ["--lease", "1s"]. */
  readonly args?: string[];
}

/** Timings short enough for tests, long enough for a loaded 2-core machine. */
export const FAST_TIMINGS = ["--heartbeat-interval", "200ms", "--lease", "1500ms", "--campaign-interval", "100ms", "--probe-interval", "200ms", "--report-interval", "200ms"];

/** A real `autonomy agent` child process. */
export class AgentProcess {
  constructor(
    readonly nodeId: string,
    readonly url: string,
    readonly process: AutonomyProcess,
  ) {}

  static async start(o: AgentOptions): Promise<AgentProcess> {
    const port = await freePort();
    const args = [
      "agent",
      "--node-id", o.nodeId,
      "--database-url", o.databaseUrl,
      "--listen", `127.0.0.1:${port}`,
      ...(o.localDatabaseUrl ? ["--local-database-url", o.localDatabaseUrl] : []),
      ...(o.coordinatorUrl ? ["--coordinator-url", o.coordinatorUrl] : []),
      ...(o.priority !== undefined ? ["--priority", String(o.priority)] : []),
      ...(o.nofailover ? ["--nofailover"] : []),
      ...(o.successor ? ["--successor"] : []),
      ...FAST_TIMINGS,
      ...((await activePki()?.serverArgs(o.nodeId, "agent")) ?? []),
      ...(o.args ?? []),
    ];
    const proc = spawnAutonomy(o.nodeId, args);
    const url = `${activePki() ? "https" : "http"}://127.0.0.1:${port}`;
    await waitHealthy(proc, url);
    return new AgentProcess(o.nodeId, url, proc);
  }

  async leader(): Promise<LeaderHealth | undefined> {
    return (await getJson<LeaderHealth>(`${this.url}/v1/health/leader`))?.body;
  }

  /** The highest epoch this agent has seen on any server (its /readyz cluster view). */
  async highestEpochSeen(): Promise<number | undefined> {
    return (await getJson<{ cluster?: { highest_epoch: number } }>(`${this.url}/readyz`))?.body.cluster?.highest_epoch;
  }

  async writeReady(): Promise<{ status: number; ready: boolean } | undefined> {
    const r = await getJson<{ ready: boolean }>(`${this.url}/v1/health/write-ready`);
    return r && { status: r.status, ready: r.body.ready };
  }
}

/** The agents that say they are Write-Ready right now. */
export async function writeReadyAgents(agents: readonly AgentProcess[]): Promise<AgentProcess[]> {
  const states = await Promise.all(agents.map(async (a) => ((await a.writeReady())?.ready ? a : undefined)));
  return states.filter((a): a is AgentProcess => a !== undefined);
}

/** Waits until exactly one of `among` is Write-Ready, and returns it. */
export function theOneLeader(among: readonly AgentProcess[], timeoutMs = 20_000): Promise<AgentProcess> {
  return waitFor(async () => {
    const ready = await writeReadyAgents(among);
    return ready.length === 1 ? ready[0] : undefined;
  }, { timeoutMs, what: "exactly one Write-Ready agent" });
}

/** A test file's PostgreSQL primary, a client on it, and the agents started on it. */
export interface AgentsOnOnePrimary {
  readonly cluster: PgCluster;
  readonly db: pg.Client;
  /** Starts agents on the primary, together; each test's agents are stopped after it. */
  start(nodeIds: readonly string[], options?: Omit<AgentOptions, "nodeId" | "databaseUrl">): Promise<AgentProcess[]>;
}

/**
 * Registers the hooks of a test file whose agents share one primary: it is
 * started before all tests, and after each test its agents are stopped and
 * the HA tables dropped, so the next test starts with no leader and no terms.
 */
export function agentsOnOnePrimary(): AgentsOnOnePrimary {
  let cluster: PgCluster | undefined;
  let db: pg.Client | undefined;
  let started: AgentProcess[] = [];
  beforeAll(async () => {
    cluster = await startPgCluster({ standbys: 0 });
    db = new pg.Client({ connectionString: cluster.primary.url() });
    await db.connect();
  });
  afterEach(async () => {
    await Promise.all(started.map((a) => a.process.stop()));
    started = [];
    await db?.query("DROP TABLE IF EXISTS leadership_state, leader_epochs, coordinator_state, autonomy_schema_migrations CASCADE");
  });
  afterAll(async () => {
    await db?.end();
    await cluster?.close();
  });
  return {
    get cluster() {
      return cluster!;
    },
    get db() {
      return db!;
    },
    async start(nodeIds, options = {}) {
      const agents = await Promise.all(nodeIds.map((nodeId) => AgentProcess.start({ ...options, nodeId, databaseUrl: cluster!.primary.url() })));
      started.push(...agents);
      return agents;
    },
  };
}

import { expect } from "vitest";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { waitFor } from "../../core/clock.js";
import { isPortFree } from "../../pgcluster/index.js";
import type { DevDescription } from "../../cli/dev/dev-cluster.js";
import { runCli } from "./cli-run.js";
import { getJson, spawnAutonomy, useTestTls, type AutonomyProcess } from "./processes.js";

/*
 * `autonomy dev` as the end-to-end tests use it: started on free ports in a
 * temp dir, read back from dev.json, stopped with SIGINT, and checked to
 * leave no process of what dev.json lists behind.
 */

export type DevAgent = DevDescription["agents"][number];

export interface LeaderHealth {
  holder_id: string;
  current_epoch: number;
  session_lock_held: boolean;
  write_ready: boolean;
  role?: string;
  node_id?: string;
}

export function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Agent ports are consecutive after --agent-base-port; a random block below
 * Linux's ephemeral range (32768+) cannot collide with the ports PostgreSQL
 * and the tests' own sockets get from the kernel.
 */
export async function freePortBlock(size: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 12_000);
    const free = await Promise.all(Array.from({ length: size }, (_, i) => isPortFree(base + i)));
    if (free.every(Boolean)) return base;
  }
  throw new Error("no block of free ports found in 20000-32767");
}

export class DevRun {
  private constructor(
    readonly proc: AutonomyProcess,
    readonly d: DevDescription,
    readonly dataDir: string,
  ) {}

  /** With `secure`, `autonomy dev --secure`: mTLS everywhere, and the CLI and getJson use its admin certificate. */
  static async start(options: { agents?: number; env?: Record<string, string>; secure?: boolean } = {}): Promise<DevRun> {
    const agents = options.agents ?? 3;
    const dataDir = mkdtempSync(join(tmpdir(), "autonomy-e2e-"));
    const base = await freePortBlock(agents + 1);
    const args = ["dev", "--data-dir", dataDir, "--coordinator-port", String(base), "--agent-base-port", String(base + 1), "--agents", String(agents), ...(options.secure ? ["--secure"] : [])];
    const proc = spawnAutonomy("dev", args, { AUTONOMY_LOG_LEVEL: "info", ...options.env });
    const describePath = join(dataDir, "dev.json");
    const d = await waitFor(
      () => {
        if (!proc.running) throw new Error(`autonomy dev exited:\n${proc.tail()}`);
        return existsSync(describePath) ? (JSON.parse(readFileSync(describePath, "utf8")) as DevDescription) : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 200, what: "autonomy dev to write dev.json" },
    ).catch((err: unknown) => {
      proc.signal("SIGINT");
      throw new Error(`${(err as Error).message}\n--- autonomy dev ---\n${proc.tail()}`);
    });
    useTestTls(d.security?.env);
    return new DevRun(proc, d, dataDir);
  }

  get coordinatorUrl(): string {
    return this.d.orchestrator_url;
  }

  get primaryUrl(): string {
    return this.d.postgres.find((p) => p.role === "primary")!.url;
  }

  get standbyUrl(): string {
    return this.d.postgres.find((p) => p.role === "standby")!.url;
  }

  agent(nodeId: string): DevAgent {
    const a = this.d.agents.find((x) => x.node_id === nodeId);
    if (!a) throw new Error(`no agent ${nodeId} in dev.json`);
    return a;
  }

  /** Every pid dev.json names: PostgreSQL servers, coordinator, agents. */
  get pids(): number[] {
    return [...this.d.postgres.map((p) => p.pid), this.d.coordinator.pid, ...this.d.agents.map((a) => a.pid)].filter(
      (p): p is number => typeof p === "number",
    );
  }

  async coordinatorLeader(): Promise<LeaderHealth | undefined> {
    return (await getJson<LeaderHealth>(`${this.coordinatorUrl}/v1/health/leader`))?.body;
  }

  /** The coordinator's leader once it is Write-Ready (optionally: with an epoch above `above`). */
  async writeReadyLeader(timeoutMs = 30_000, above = 0): Promise<LeaderHealth> {
    return waitFor(
      async () => {
        const l = await this.coordinatorLeader();
        return l && l.holder_id !== "" && l.write_ready && l.session_lock_held && l.current_epoch > above ? l : undefined;
      },
      { timeoutMs, what: `a Write-Ready leader with an epoch above ${above} (coordinator ${this.coordinatorUrl})` },
    );
  }

  /** A Write-Ready leader, and the coordinator sees every agent connected: the cluster is settled. */
  async settled(): Promise<void> {
    await this.writeReadyLeader(60_000);
    await waitFor(
      async () => {
        const r = await runCli(["ha", "status", "--orchestrator-url", this.coordinatorUrl, "--output", "json"]);
        const s = r.code === 0 ? (JSON.parse(r.stdout) as { nodes: { connected: boolean }[] }) : undefined;
        return s && s.nodes.length === this.d.agents.length && s.nodes.every((n) => n.connected);
      },
      { timeoutMs: 30_000, intervalMs: 250, what: "the coordinator to see every agent connected" },
    );
  }

  async agentLeader(nodeId: string): Promise<LeaderHealth | undefined> {
    return (await getJson<LeaderHealth>(`${this.agent(nodeId).url}/v1/health/leader`))?.body;
  }

  async agentWriteReady(nodeId: string): Promise<{ status: number; body: { ready: boolean } } | undefined> {
    return getJson<{ ready: boolean }>(`${this.agent(nodeId).url}/v1/health/write-ready`);
  }

  /** One statement on one of dev.json's PostgreSQL servers. */
  async sql<R extends pg.QueryResultRow = Record<string, unknown>>(url: string, text: string, params: unknown[] = []): Promise<pg.QueryResult<R>> {
    const client = new pg.Client({ connectionString: url, application_name: "autonomy-e2e-test" });
    await client.connect();
    try {
      return await client.query<R>(text, params);
    } finally {
      await client.end();
    }
  }

  /** The coordinator's audit log, every event so far, in file order. */
  auditEvents(): AuditLine[] {
    const dir = this.d.audit_dir;
    if (!existsSync(dir)) return [];
    return readdirSync(dir)
      .filter((f) => f.endsWith(".jsonl"))
      .sort()
      .flatMap((f) =>
        readFileSync(join(dir, f), "utf8")
          .split("\n")
          .flatMap((line) => {
            try {
              const e = JSON.parse(line) as AuditLine;
              return typeof e.type === "string" ? [e] : [];
            } catch {
              return []; // a line being written right now
            }
          }),
      );
  }

  /** stop(), then the walk-throughs' closing check: exit 0 and nothing left running. */
  async stopAndExpectClean(): Promise<void> {
    const { code, survivors, output } = await this.stop();
    expect(survivors, `processes left running after SIGINT:\n${output}`).toEqual([]);
    expect(code, output).toBe(0);
  }

  /**
   * SIGINT, as Ctrl-C; then every process dev.json lists must be gone and
   * the data dir is removed. Returns dev's exit code and any survivors.
   */
  async stop(): Promise<{ code: number | null; survivors: number[]; output: string }> {
    const pids = this.pids;
    for (const pid of pids) {
      // A test may leave an agent stopped; SIGCONT lets it see the SIGTERM.
      if (alive(pid)) {
        try {
          process.kill(pid, "SIGCONT");
        } catch {
          // gone meanwhile
        }
      }
    }
    let code: number | null = null;
    if (this.proc.running) {
      this.proc.signal("SIGINT");
      const timer = setTimeout(() => void this.proc.kill(), 45_000);
      code = await this.proc.waitExit();
      clearTimeout(timer);
    } else {
      code = await this.proc.waitExit();
    }
    const survivors = await waitFor(() => (pids.every((p) => !alive(p)) ? [] : undefined), { timeoutMs: 15_000, what: "every process in dev.json to exit" }).catch(
      () => pids.filter(alive),
    );
    // Reported as a failure by the caller; never left running.
    for (const pid of survivors) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone meanwhile
      }
    }
    useTestTls(undefined);
    // AUTONOMY_E2E_KEEP=1 keeps dev.json's logs and audit log for a post-mortem.
    if (process.env.AUTONOMY_E2E_KEEP !== "1") rmSync(this.dataDir, { recursive: true, force: true });
    return { code, survivors, output: this.proc.tail(20) };
  }
}

/** One audit line as the coordinator writes it (the fields the tests read). */
export interface AuditLine {
  id: string;
  time: string;
  category: string;
  type: string;
  operator: string;
  reason: string;
  node_id: string;
  epoch: number;
  message: string;
  evidence?: Record<string, unknown>;
}

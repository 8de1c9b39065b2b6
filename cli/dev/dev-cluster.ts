import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync, type WriteStream } from "node:fs";
import { join, resolve } from "node:path";
import { waitFor } from "../../core/clock.js";
import { unavailable } from "../../core/errors.js";
import { isPortFree, startPgCluster, withParentDeathSignal, type PgCluster } from "../../pgcluster/index.js";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { loadTls } from "../../rpc/auth/tls.js";
import type { ClientCredentials } from "../../rpc/client.js";
import { getJson } from "./https-get.js";
import { makeThrowawayCa, type ThrowawayCa } from "./throwaway-ca.js";
import { DemoWorkload } from "./workload.js";

const BIN = new URL("../../bin/autonomy.js", import.meta.url).pathname;

export interface DevOptions {
  readonly agents: number;
  readonly dataDir: string;
  readonly host: string;
  readonly coordinatorPort: number;
  readonly agentBasePort: number;
  /** mTLS everywhere with a throwaway CA made in DATA-DIR/pki. */
  readonly secure?: boolean;
  /** Who runs it: the admin certificate's CN. */
  readonly operator?: string;
  readonly log: (line: string) => void;
}

/** A child `autonomy` process with its log file. */
interface Child {
  readonly name: string;
  readonly url: string;
  readonly proc: ChildProcess;
  readonly logFile: string;
  readonly log: WriteStream;
}

export interface DevDescription {
  readonly started_at: string;
  readonly pid: number;
  readonly data_dir: string;
  readonly orchestrator_url: string;
  readonly audit_dir: string;
  readonly database_url: string;
  readonly postgres: { role: string; url: string; port: number; pid: number | undefined; data_dir: string }[];
  readonly coordinator: { url: string; pid: number | undefined; log: string };
  readonly agents: { node_id: string; url: string; pid: number | undefined; priority: number; local_database_url: string | null; log: string }[];
  readonly workload: { table: string; description: string };
  /** With --secure: the CA, the operator's admin certificate, and the env that makes the CLI use them. */
  readonly security: { ca: string; admin_cert: string; admin_key: string; read_token: string; token_file: string; env: Record<string, string> } | null;
}

/**
 * Everything `autonomy dev` runs: PostgreSQL primary + standby, a
 * coordinator, N agents and the demo workload. Children get a parent-death
 * signal, so even a SIGKILLed `autonomy dev` leaves nothing running.
 */
export class DevCluster {
  private pg: PgCluster | undefined;
  private coordinator: Child | undefined;
  private readonly agents: { child: Child; nodeId: string; priority: number; localUrl: string | undefined }[] = [];
  private workload: DemoWorkload | undefined;
  readonly auditDir: string;
  private readonly logDir: string;
  /** What dev's own clients (workload, leader line, health checks) present; an admin certificate with --secure. */
  credentials: ClientCredentials = {};

  constructor(private readonly options: DevOptions) {
    this.auditDir = resolve(options.dataDir, "audit");
    this.logDir = resolve(options.dataDir, "logs");
  }

  get counters() {
    return this.workload?.counters;
  }

  async start(): Promise<DevDescription> {
    const { host, coordinatorPort, agentBasePort, agents } = this.options;
    const ports = [coordinatorPort, ...Array.from({ length: agents }, (_, i) => agentBasePort + i)];
    for (const port of ports) {
      if (!(await isPortFree(port, host))) {
        const flag = port === coordinatorPort ? "--coordinator-port" : "--agent-base-port";
        throw unavailable(`port ${host}:${port} is in use; free it or choose another with ${flag}`);
      }
    }
    mkdirSync(this.auditDir, { recursive: true });
    mkdirSync(this.logDir, { recursive: true });

    this.options.log("starting PostgreSQL primary and streaming standby…");
    this.pg = await startPgCluster({ standbys: 1 });
    const primaryUrl = this.pg.primary.url();
    const standbyUrl = this.pg.standby.url();
    // Agents find the primary among both servers, as after a Postgres failover.
    const lockUrl = `postgres://postgres@${host}:${this.pg.primary.port},${host}:${this.pg.standby.port}/postgres?target_session_attrs=read-write`;

    const scheme = this.options.secure ? "https" : "http";
    let security: DevDescription["security"] = null;
    let ca: ThrowawayCa | undefined;
    const tlsFlags = async (cn: string, ou: "agent" | "coordinator"): Promise<string[]> => {
      if (!ca) return [];
      const c = await ca.issue(cn, ou);
      return ["--tls-cert", c.cert, "--tls-key", c.key, "--tls-ca", ca.ca];
    };
    if (this.options.secure) {
      this.options.log("making a throwaway CA and certificates (mTLS everywhere)…");
      ca = await makeThrowawayCa(join(this.options.dataDir, "pki"));
      const admin = await ca.issue(this.options.operator ?? "operator", "admin");
      const readToken = randomBytes(24).toString("hex");
      const tokenFile = join(this.options.dataDir, "pki", "tokens");
      writeFileSync(tokenFile, `# NAME ROLE TOKEN: bearer tokens for who cannot carry a certificate\ndashboard read ${readToken}\n`, { mode: 0o600 });
      this.credentials = { tls: loadTls({ cert: admin.cert, key: admin.key, ca: ca.ca }) };
      security = {
        ca: ca.ca,
        admin_cert: admin.cert,
        admin_key: admin.key,
        read_token: readToken,
        token_file: tokenFile,
        env: { AUTONOMY_TLS_CERT: admin.cert, AUTONOMY_TLS_KEY: admin.key, AUTONOMY_TLS_CA: ca.ca },
      };
    }
    const tokenFlags = security ? ["--token-file", security.token_file] : [];

    this.options.log("starting the coordinator…");
    const coordinatorUrl = `${scheme}://${host}:${coordinatorPort}`;
    this.coordinator = this.spawn("coordinator", coordinatorUrl, [
      "coordinator",
      // Both servers, as agents: the coordinator follows the authoritative primary and contains a zombie.
      "--database-url", lockUrl,
      "--listen", `${host}:${coordinatorPort}`,
      "--audit-dir", this.auditDir,
      ...(await tlsFlags("coordinator", "coordinator")),
      ...tokenFlags,
    ]);
    await this.waitHealthy(this.coordinator);

    this.options.log(`starting ${agents} agents…`);
    const locals = [primaryUrl, standbyUrl];
    for (let i = 0; i < agents; i++) {
      const nodeId = `cp-node-${i + 1}`;
      const priority = 100 * (agents - i);
      const url = `${scheme}://${host}:${agentBasePort + i}`;
      const localUrl = locals[i];
      const child = this.spawn(nodeId, url, [
        "agent",
        "--node-id", nodeId,
        "--database-url", lockUrl,
        "--coordinator-url", coordinatorUrl,
        "--listen", `${host}:${agentBasePort + i}`,
        "--priority", String(priority),
        ...(localUrl ? ["--local-database-url", localUrl] : []),
        ...(await tlsFlags(nodeId, "agent")),
        ...tokenFlags,
      ]);
      this.agents.push({ child, nodeId, priority, localUrl });
    }
    await Promise.all(this.agents.map((a) => this.waitHealthy(a.child)));

    this.workload = new DemoWorkload(lockUrl, this.agents.map((a) => ({ nodeId: a.nodeId, url: a.child.url })), this.credentials);
    await this.workload.start();

    return {
      started_at: new Date().toISOString(),
      pid: process.pid,
      data_dir: resolve(this.options.dataDir),
      orchestrator_url: coordinatorUrl,
      audit_dir: this.auditDir,
      database_url: lockUrl,
      postgres: [this.pg.primary, this.pg.standby].map((s, i) => ({
        role: i === 0 ? "primary" : "standby",
        url: s.url(),
        port: s.port,
        pid: s.pid(),
        data_dir: s.dataDir,
      })),
      coordinator: { url: coordinatorUrl, pid: this.coordinator.proc.pid, log: this.coordinator.logFile },
      agents: this.agents.map((a) => ({
        node_id: a.nodeId,
        url: a.child.url,
        pid: a.child.proc.pid,
        priority: a.priority,
        local_database_url: a.localUrl ?? null,
        log: a.child.logFile,
      })),
      workload: { table: "promotion_decisions", description: "fenced writes through assert_epoch() by the leader's control-plane stand-in" },
      security,
    };
  }

  /**
   * Starts the old primary again after `autonomy dev promote --crash-primary`:
   * writable on its old timeline, a zombie for the coordinator to contain
   * (seed 004's watch-out). Returns what was done, for the dev log.
   */
  async restartOldPrimary(): Promise<string> {
    const primary = this.pg?.primary;
    if (!primary) return "no PostgreSQL cluster is running";
    if (primary.isRunning()) return `the old primary (port ${primary.port}) is already running`;
    await primary.start();
    return `started the old primary again on port ${primary.port}, writable on its old timeline: a zombie for the coordinator to contain`;
  }

  /** Stops everything in order: workload, agents (the leader resigns), coordinator, PostgreSQL. */
  async stop(): Promise<void> {
    await this.workload?.stop();
    await Promise.all(this.agents.map((a) => stopChild(a.child)));
    if (this.coordinator) await stopChild(this.coordinator);
    await this.pg?.close();
  }

  private spawn(name: string, url: string, args: string[]): Child {
    const logFile = join(this.logDir, `${name}.log`);
    const log = createWriteStream(logFile, { flags: "a" });
    const [cmd, argv] = withParentDeathSignal(process.execPath, [BIN, ...args], "SIGTERM");
    const proc = spawn(cmd, argv, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, AUTONOMY_LOG_LEVEL: process.env.AUTONOMY_LOG_LEVEL ?? "info" } });
    proc.stdout?.pipe(log, { end: false });
    proc.stderr?.pipe(log, { end: false });
    return { name, url, proc, logFile, log };
  }

  private async waitHealthy(child: Child): Promise<void> {
    await waitFor(
      async () => {
        if (child.proc.exitCode !== null) throw unavailable(`${child.name} exited with code ${child.proc.exitCode}; see ${child.logFile}`);
        const res = await getJson(`${child.url}/healthz`, { ca: this.credentials.tls?.ca, timeoutMs: 1_000 }).catch(() => undefined);
        return res?.status === 200;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: `${child.name} to answer ${child.url}/healthz` },
    ).catch((err: unknown) => {
      throw unavailable(`${(err as Error).message.replace(/ \(last error: .*\)$/, "")}; see ${child.logFile}`);
    });
  }
}

async function stopChild(child: Child): Promise<void> {
  const { proc } = child;
  if (proc.exitCode === null && proc.signalCode === null) {
    const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
    proc.kill("SIGCONT");
    proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  }
  child.log.end();
}

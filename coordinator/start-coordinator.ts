import { systemClock, type Clock } from "../core/clock.js";
import { describeError, toHaError } from "../core/errors.js";
import { silentLogger, type Logger } from "../core/log.js";
import { noLeader } from "../core/model.js";
import { parseDatabaseUrl, redact } from "../db/connect.js";
import { SchemaName } from "../db/identifiers.js";
import { migrate } from "../db/migrations.js";
import { DatabaseAuthority } from "../db/database-authority.js";
import { PrimaryPool } from "../db/primary-pool.js";
import { readCoordinatorState, writeMaintenance, writeReconcileHold } from "../db/coordinator-state.js";
import { DatabaseFailover, type ServerFence } from "./live/database-failover.js";
import type { ServerSecurity } from "../rpc/auth/settings.js";
import { serve } from "../rpc/server.js";
import { listenerMetrics } from "../rpc/auth/listener-metrics.js";
import { AuditLog } from "./audit/audit-log.js";
import { EpochFloor } from "./live/epoch-floor.js";
import { makePolicy, type CoordinatorPolicy } from "./config.js";
import { createTruthPool, DatabaseTruthPoller } from "./live/db-truth.js";
import { Engine } from "./live/engine.js";
import { coordinatorRoutes } from "./live/http-routes.js";
import { LeaderEventLog } from "../core/leader-event-log.js";
import { NodeSessions } from "./live/node-sessions.js";
import type { OperationContext } from "./live/operation-context.js";
import { coordinatorServices } from "./live/services.js";
import { recoverSplitBrain } from "./live/split-brain-recovery.js";

export interface CoordinatorConfig {
  /** The lock database, read for the truth (pg_locks, leadership_state, leader_epochs). */
  readonly databaseUrl: string;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 8890; 0 picks a free port. */
  readonly port?: number;
  readonly auditDir: string;
  /** Default "public". */
  readonly schema?: string;
  /** Timing and policy; defaults per CoordinatorPolicy. */
  readonly policy?: Partial<CoordinatorPolicy>;
  /** Migrate the schema on start (idempotent). Default true. */
  readonly migrate?: boolean;
  readonly log?: Logger;
  readonly clock?: Clock;
  /** Largest gRPC message accepted. Default 1 MiB. */
  readonly maxMessageBytes?: number;
  /** Who may call what; without it the coordinator must listen on loopback. */
  readonly security?: ServerSecurity;
  /** Where this coordinator runs; shown in status. */
  readonly region?: string;
  /** Fence a primary that a promotion left behind and hold its nodes. Default true. */
  readonly containSuperseded?: boolean;
  /** What else is done to such a server. Default none. */
  readonly serverFence?: ServerFence;
}

export interface RunningCoordinator {
  /** http://host:port: gRPC (AgentService, LeaderService, HaAdminService) and HTTP on one port. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly policy: CoordinatorPolicy;
  /** Stops serving, ends agent streams, closes the audit log and the database pool. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts a coordinator in this process: checks the policy, reaches and
 * migrates the lock database (failing fast with a clear message), then serves.
 */
export async function startCoordinator(config: CoordinatorConfig): Promise<RunningCoordinator> {
  const policy = makePolicy(config.policy);
  const schema = new SchemaName(config.schema ?? "public");
  const log = config.log ?? silentLogger();
  const clock = config.clock ?? systemClock;
  const target = parseDatabaseUrl(config.databaseUrl, "--database-url");
  // With several hosts, the scout looks at each and the truth pool follows
  // the authoritative primary among them (db/database-authority.ts).
  const authority = new DatabaseAuthority({
    target,
    schema,
    clusterId: policy.clusterId,
    nodeId: "autonomy-coordinator",
    connectTimeoutMs: 3_000,
    log: log.child({ component: "authority" }),
    changed: () => undefined,
  });
  await authority.look();
  const first = authority.authoritativeHost()?.url ?? target.urls[0]!;
  const pool = new PrimaryPool(first, (url) => createTruthPool(url, log));
  try {
    const client = await pool.connect();
    try {
      if (config.migrate !== false) await migrate(client, schema);
    } finally {
      client.release();
    }
  } catch (err) {
    await Promise.all([pool.end().catch(() => undefined), authority.close()]);
    throw toHaError(err, `cannot use the lock database ${redact(config.databaseUrl)}`);
  }

  // The epoch floor lives in the lock database (epoch_floor, with the server's
  // identity): it survives restarts, replicates to standbys, and a fresh
  // database starts from zero whatever an old audit log says.
  const floor = await EpochFloor.load(pool, schema, policy.clusterId, log).catch(async (err: unknown) => {
    await Promise.all([pool.end().catch(() => undefined), authority.close()]);
    throw toHaError(err, `cannot read the epoch floor from ${redact(config.databaseUrl)}`);
  });

  // Maintenance mode and the manual-reconcile hold as the last coordinator left them.
  const durableState = await readCoordinatorState(pool, schema, policy.clusterId).catch(async (err: unknown) => {
    await Promise.all([pool.end().catch(() => undefined), authority.close()]);
    throw toHaError(err, `cannot read the coordinator state from ${redact(config.databaseUrl)}`);
  });

  // Everything long-lived stops when this aborts.
  const lifetime = new AbortController();
  const audit = new AuditLog(config.auditDir, policy.clusterId, clock);
  const truth = new DatabaseTruthPoller(pool, schema, policy.clusterId, clock, log);
  const events = new LeaderEventLog(noLeader, () => clock.now());
  const sessions = new NodeSessions(policy.clusterId, clock, log, { limits: policy, signal: lifetime.signal });
  const failover = new DatabaseFailover({
    authority,
    pool,
    schema,
    clusterId: policy.clusterId,
    audit,
    clock,
    log: log.child({ component: "database-failover" }),
    contain: config.containSuperseded ?? true,
    serverFence: config.serverFence ?? { kind: "none" },
    changed: () => void truth.refresh(),
  });
  const parts = { policy, sessions, truth, pool, schema, audit, clock, log, databases: failover, region: config.region ?? "" };
  // The engine attaches itself to the sessions and the poller; a recovery it
  // starts runs as an operation of that same engine.
  const engine = new Engine({
    ...parts,
    events,
    floor,
    signal: lifetime.signal,
    primaryHost: () => pool.target,
    durable: {
      loaded: durableState,
      writeMaintenance: (on, by, reason) => writeMaintenance(pool, schema, policy.clusterId, on, by, reason),
      writeReconcileHold: (on, by, reason) => writeReconcileHold(pool, schema, policy.clusterId, on, by, reason),
    },
    recover: async (self, target, reason) => {
      await recoverSplitBrain({ ...parts, engine: self }, { strategy: "promote-leader", operator: "system", reason, caller: "coordinator (automatic recovery)", force: false, targetNode: target });
    },
  });
  const ctx: OperationContext = { ...parts, engine };

  await truth.refresh();
  const polling = Promise.all([
    truth.run(policy.pollIntervalMs, lifetime.signal),
    // One host has nothing to compare: the truth read notices its promotions.
    target.hosts.length > 1 ? failover.run(policy.pollIntervalMs, lifetime.signal) : Promise.resolve(),
  ]);

  const watchers = { count: 0 };
  const metrics = () => {
    const view = engine.view();
    const counters = engine.counters;
    return {
      clusterId: policy.clusterId,
      leader: engine.leader(),
      nodes: view.nodes,
      splitBrain: engine.finding().finding.detected,
      splitBrainDetections: counters.splitBrainDetections,
      failovers: counters.failovers,
      maintenance: view.maintenance,
      databaseReachable: view.db?.reachable === true,
      watchers: watchers.count,
      intruders: { current: engine.intruders().length, ...counters.intruders },
    };
  };
  let server;
  try {
    server = await serve({
      host: config.host ?? "127.0.0.1",
      port: config.port ?? 8890,
      services: coordinatorServices(ctx, events, watchers),
      http: coordinatorRoutes(engine, metrics, () => listenerMetrics(config.security?.auth, config.host ?? "127.0.0.1"), { ctx, events }),
      log,
      maxMessageBytes: config.maxMessageBytes,
      auth: config.security?.auth,
      insecureListen: config.security?.insecureListen,
      healthListen: config.security?.healthListen,
    });
  } catch (err) {
    lifetime.abort();
    await polling;
    await Promise.all([pool.end().catch(() => undefined), authority.close()]);
    throw toHaError(err, `cannot listen on ${config.host ?? "127.0.0.1"}:${config.port ?? 8890}`);
  }
  log.info(
    { url: server.url, cluster_id: policy.clusterId, schema: schema.name, audit_dir: config.auditDir, tls: Boolean(config.security?.auth.tls), tokens: config.security?.auth.tokens?.size ?? 0 },
    "coordinator listening",
  );

  let stopping: Promise<void> | undefined;
  const running = server;
  return {
    url: running.url,
    host: running.host,
    port: running.port,
    policy,
    stop: () =>
      (stopping ??= (async () => {
        lifetime.abort();
        await polling;
        await running.close();
        await audit.close().catch((err: unknown) => log.warn({ err: describeError(err) }, "closing the audit log failed"));
        await Promise.all([pool.end().catch(() => undefined), authority.close()]);
        log.info("coordinator stopped");
      })()),
  };
}

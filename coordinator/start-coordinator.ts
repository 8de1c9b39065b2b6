import { hostname } from "node:os";
import { systemClock, waitFor, type Clock } from "../core/clock.js";
import { describeError, invalidArgument, toHaError } from "../core/errors.js";
import { silentLogger, type Logger } from "../core/log.js";
import { parseDatabaseUrl, redact } from "../db/connect.js";
import { readCoordinatorStates } from "../db/coordinator-state.js";
import { DatabaseAuthority } from "../db/database-authority.js";
import { SchemaName, validateClusterId } from "../db/identifiers.js";
import { migrate } from "../db/migrations.js";
import { PrimaryPool } from "../db/primary-pool.js";
import { listenerMetrics } from "../rpc/auth/listener-metrics.js";
import type { ServerSecurity } from "../rpc/auth/settings.js";
import { serve } from "../rpc/server.js";
import { makePolicy, type CoordinatorPolicy } from "./config.js";
import { CoordinatorLease, type CoordinatorRole } from "./ha/coordinator-lease.js";
import { RequestLedger } from "./ha/request-ledger.js";
import type { CoordinatorTier } from "./ha/tier.js";
import { startClusterRuntime, type ClusterRuntime } from "./live/cluster-runtime.js";
import { ClusterChoice, routeHttp, routeServices } from "./live/cluster-router.js";
import type { ServerFence } from "./live/database-failover.js";
import { createTruthPool } from "./live/db-truth.js";
import { coordinatorRoutes } from "./live/http-routes.js";
import { coordinatorServices } from "./live/services.js";
import { tierMetrics } from "./live/metrics.js";

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
  /**
   * Every cluster this coordinator serves (each its own lock, epochs, view,
   * audit and leader stream). Default: the policy's one cluster id.
   */
  readonly clusters?: readonly string[];
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
  /** This coordinator's name in its tier. Default coordinator-HOSTNAME-PORT. */
  readonly coordinatorId?: string;
  /** The URL agents and the CLI reach it at, recorded while it is active. Default http(s)://HOST:PORT as it listens. */
  readonly advertiseUrl?: string;
  /** Timing of the election among coordinators (coordinator/ha/coordinator-lease.ts). */
  readonly tierTiming?: Partial<TierTiming>;
}

/** How fast a paused active coordinator is replaced: it stops acting after leaseMs, the database ends its session after takeoverMs. */
export interface TierTiming {
  readonly renewMs: number;
  readonly leaseMs: number;
  readonly takeoverMs: number;
}

export const defaultTierTiming: TierTiming = { renewMs: 250, leaseMs: 1_000, takeoverMs: 2_000 };

export interface RunningCoordinator {
  /** http://host:port: gRPC (AgentService, LeaderService, HaAdminService) and HTTP on one port. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** The first cluster's policy (every cluster shares it but for its id). */
  readonly policy: CoordinatorPolicy;
  /** The clusters it serves, in the order given. */
  readonly clusters: readonly string[];
  /** Active or standby in its tier, its term, and who is active. */
  role(): CoordinatorRole;
  /** Resolves once every audit event queued before the call, for any cluster, is written. */
  auditWritten(): Promise<void>;
  /** Stops serving, ends agent streams, closes the audit log and the database pool. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts a coordinator in this process: checks the policy, reaches and
 * migrates the lock database (failing fast with a clear message), then serves
 * every cluster it is given and joins the election of its tier.
 */
export async function startCoordinator(config: CoordinatorConfig): Promise<RunningCoordinator> {
  const policy = makePolicy(config.policy);
  const clusterIds = clustersOf(config.clusters ?? [policy.clusterId]);
  const schema = new SchemaName(config.schema ?? "public");
  const log = config.log ?? silentLogger();
  const clock = config.clock ?? systemClock;
  const host = config.host ?? "127.0.0.1";
  const port = config.port ?? 8890;
  const coordinatorId = config.coordinatorId ?? `coordinator-${hostname()}-${port}`;
  const target = parseDatabaseUrl(config.databaseUrl, "--database-url");
  const policyOf = (clusterId: string) => makePolicy({ ...config.policy, clusterId });

  // The first cluster's scout picks the server the pool starts on (db/database-authority.ts).
  const authority = new DatabaseAuthority({
    target,
    schema,
    clusterId: clusterIds[0]!,
    nodeId: "autonomy-coordinator",
    connectTimeoutMs: 3_000,
    log: log.child({ component: "authority" }),
    changed: () => undefined,
  });
  await authority.look();
  const pool = new PrimaryPool(authority.authoritativeHost()?.url ?? target.urls[0]!, (url) => createTruthPool(url, log));
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

  // Everything long-lived stops when this aborts.
  const lifetime = new AbortController();
  // The election among coordinators starts once this one listens (it
  // advertises its URL with its term); orders go out stamped with its term.
  let lease: CoordinatorLease | undefined;
  const runtimes: ClusterRuntime[] = [];
  const acting = () => lease?.active === true && runtimes.length > 0 && runtimes.every((r) => r.engine.isActing);
  const tier: CoordinatorTier = {
    role: () => lease?.role ?? { role: "standby", term: 0, coordinatorId, activeUrl: "", activeId: "" },
    acting,
  };
  const shared = {
    target,
    databaseUrl: config.databaseUrl,
    pool,
    schema,
    auditDir: config.auditDir,
    region: config.region ?? "",
    containSuperseded: config.containSuperseded ?? true,
    serverFence: config.serverFence ?? { kind: "none" as const },
    tier,
    commandTerm: () => (lease?.active === true ? lease.term : undefined),
    clock,
    log,
    signal: lifetime.signal,
  };
  const closeAll = async () => {
    lifetime.abort();
    await Promise.all(runtimes.map((r) => r.close()));
    await Promise.all([pool.end().catch(() => undefined), authority.close()]);
  };
  try {
    for (const clusterId of clusterIds) runtimes.push(await startClusterRuntime(policyOf(clusterId), shared, clusterId === clusterIds[0] ? authority : undefined));
    // Each cluster polls at its own phase of the interval: a hundred clusters
    // read in a steady trickle, not in a burst that stalls the event loop.
    for (const [i, r] of runtimes.entries()) await r.run(i / runtimes.length);
  } catch (err) {
    await closeAll();
    throw err;
  }
  const ledger = new RequestLedger(pool, schema, () => lease?.term ?? 0, clock, log.child({ component: "requests" }));
  const choice = new ClusterChoice(clusterIds);
  const snapshots = () => runtimes.map((r) => r.metrics());
  const listener = () => tierMetrics(tier, listenerMetrics(config.security?.auth, host));

  let server;
  try {
    server = await serve({
      host,
      port,
      services: routeServices(new Map(runtimes.map((r) => [r.clusterId, coordinatorServices(r.ctx, r.events, r.watchers, { tier, ledger, clusters: () => runtimes.map((x) => x.ctx) })])), choice),
      http: routeHttp(new Map(runtimes.map((r) => [r.clusterId, coordinatorRoutes(r.engine, snapshots, listener, { ctx: r.ctx, events: r.events }, tier)])), choice),
      log,
      maxMessageBytes: config.maxMessageBytes,
      auth: config.security?.auth,
      insecureListen: config.security?.insecureListen,
      healthListen: config.security?.healthListen,
    });
  } catch (err) {
    await closeAll();
    throw toHaError(err, `cannot listen on ${host}:${port}`);
  }
  const advertiseUrl = config.advertiseUrl ?? advertisedUrl(server.url, host);
  const activeLease = new CoordinatorLease({
    coordinatorId,
    advertiseUrl,
    region: config.region ?? "",
    schema,
    databaseUrl: () => pool.connectionUrl,
    pool,
    ...defaultTierTiming,
    ...config.tierTiming,
    clock,
    log: log.child({ component: "tier" }),
    changed: (role) => {
      if (role.role !== "active") {
        for (const r of runtimes) r.engine.deactivate();
        return;
      }
      // Continue from what the last active coordinator recorded; act only once it is read.
      void readCoordinatorStates(pool, schema, clusterIds).then(
        (states) => {
          if (activeLease.role.role !== "active" || activeLease.role.term !== role.term) return;
          for (const r of runtimes) r.engine.activate(states.get(r.clusterId)!);
        },
        (err: unknown) => log.error({ err: describeError(err) }, "cannot read the coordinator state after taking over; not acting until this coordinator takes the lock again"),
      );
    },
  });
  lease = activeLease;
  activeLease.start();
  // Ready to answer as what it is: the active coordinator, or a standby that knows which one is.
  await waitFor(() => acting() || activeLease.role.activeUrl !== "", { timeoutMs: 5_000, what: "this coordinator to become active or to find the active one" }).catch((err: unknown) =>
    log.warn({ err: describeError(err) }, "no coordinator is active yet; serving reads as a standby meanwhile"),
  );
  // A standby shows what the active coordinator records (maintenance, the hold).
  const following = (async () => {
    while (!lifetime.signal.aborted) {
      await clock.sleep(1_000, lifetime.signal).catch(() => undefined);
      if (lifetime.signal.aborted || acting()) continue;
      const states = await readCoordinatorStates(pool, schema, clusterIds).catch(() => undefined);
      for (const r of runtimes) if (states) r.engine.followDurable(states.get(r.clusterId)!);
    }
  })();
  log.info(
    { url: server.url, advertise_url: advertiseUrl, coordinator_id: coordinatorId, clusters: clusterIds, schema: schema.name, audit_dir: config.auditDir, tls: Boolean(config.security?.auth.tls), tokens: config.security?.auth.tokens?.size ?? 0 },
    "coordinator listening",
  );

  let stopping: Promise<void> | undefined;
  const running = server;
  return {
    url: running.url,
    host: running.host,
    port: running.port,
    policy: runtimes[0]!.policy,
    clusters: clusterIds,
    role: () => ({ ...tier.role(), role: acting() ? "active" : "standby" }),
    auditWritten: async () => void (await Promise.all(runtimes.map((r) => r.auditWritten()))),
    stop: () =>
      (stopping ??= (async () => {
        // The lock goes first, so a standby takes over while this one winds down.
        await activeLease.stop();
        lifetime.abort();
        await following;
        await running.close();
        await closeAll();
        log.info("coordinator stopped");
      })()),
  };
}

/** The cluster ids to serve: each valid, none twice. */
function clustersOf(ids: readonly string[]): string[] {
  if (ids.length === 0) throw invalidArgument("--cluster-id names no cluster");
  const valid = ids.map((id) => validateClusterId(id));
  const dup = valid.find((id, i) => valid.indexOf(id) !== i);
  if (dup) throw invalidArgument(`--cluster-id lists ${dup} twice`);
  return valid;
}

/** The URL this coordinator is reached at: as it listens, with the machine's name for a wildcard address. */
function advertisedUrl(listening: string, host: string): string {
  if (host !== "0.0.0.0" && host !== "::" && host !== "") return listening;
  const url = new URL(listening);
  url.hostname = hostname();
  return url.origin;
}


import type { Clock } from "../../core/clock.js";
import { toHaError } from "../../core/errors.js";
import { LeaderEventLog } from "../../core/leader-event-log.js";
import type { Logger } from "../../core/log.js";
import { noLeader } from "../../core/model.js";
import { redact, type DatabaseTarget } from "../../db/connect.js";
import { readCoordinatorState, writeAutomaticFailover, writeDesignation, writeMaintenance, writeReconcileHold } from "../../db/coordinator-state.js";
import { DatabaseAuthority } from "../../db/database-authority.js";
import type { SchemaName } from "../../db/identifiers.js";
import type { PrimaryPool } from "../../db/primary-pool.js";
import { readEpochsAbove } from "../../db/leadership.js";
import { AuditLog } from "../audit/audit-log.js";
import { AuditStore } from "../audit/audit-store.js";
import type { CoordinatorPolicy } from "../config.js";
import type { CoordinatorTier } from "../ha/tier.js";
import { DatabaseFailover, type ServerFence } from "./database-failover.js";
import { DatabaseTruthPoller } from "./db-truth.js";
import { Engine } from "./engine.js";
import { EpochFloor } from "./epoch-floor.js";
import type { MetricsSnapshot } from "./metrics.js";
import { NodeSessions } from "./node-sessions.js";
import type { OperationContext } from "./operation-context.js";
import { recoverSplitBrain } from "./split-brain-recovery.js";

/** What every cluster of one coordinator shares. */
export interface SharedParts {
  readonly target: DatabaseTarget;
  readonly databaseUrl: string;
  readonly pool: PrimaryPool;
  readonly schema: SchemaName;
  readonly auditDir: string;
  readonly region: string;
  readonly containSuperseded: boolean;
  readonly serverFence: ServerFence;
  readonly tier: CoordinatorTier;
  /** The term orders are stamped with, or undefined while this coordinator may not give orders. */
  readonly commandTerm: () => number | undefined;
  readonly clock: Clock;
  readonly log: Logger;
  readonly signal: AbortSignal;
}

/**
 * One cluster served by a coordinator: its own lock and epochs, view, engine,
 * leader stream, audit and metrics, over the coordinator's shared pool and
 * tier. A tier serves many clusters by running one of these per cluster id.
 */
export interface ClusterRuntime {
  readonly clusterId: string;
  readonly policy: CoordinatorPolicy;
  readonly engine: Engine;
  readonly ctx: OperationContext;
  readonly events: LeaderEventLog;
  readonly watchers: { count: number };
  metrics(): MetricsSnapshot;
  /**
   * Starts reading the database (after the first read, done before it
   * returns); `phase` (0 ≤ phase < 1) places its polls within the interval.
   */
  run(phase?: number): Promise<void>;
  /** Resolves once every audit event queued before the call is written. */
  auditWritten(): Promise<void>;
  close(): Promise<void>;
}

/** Reads the lock database for one cluster (floor, durable state) and builds its parts; errors name the cluster. */
export async function startClusterRuntime(policy: CoordinatorPolicy, shared: SharedParts, given?: DatabaseAuthority): Promise<ClusterRuntime> {
  const { pool, schema, clock, signal } = shared;
  const clusterId = policy.clusterId;
  const log = shared.log.child({ cluster_id: clusterId });
  // With several hosts, the scout looks at each and the pool follows the
  // authoritative primary among them (db/database-authority.ts); the epochs
  // it weighs are this cluster's.
  const authority =
    given ??
    new DatabaseAuthority({
      target: shared.target,
      schema,
      clusterId,
      nodeId: "autonomy-coordinator",
      connectTimeoutMs: 3_000,
      log: log.child({ component: "authority" }),
      changed: () => undefined,
    });
  if (!given) await authority.look();
  const what = (part: string) => `cannot read ${part} of cluster ${clusterId} from ${redact(shared.databaseUrl)}`;
  // The epoch floor lives in the lock database (epoch_floor, with the server's
  // identity): it survives restarts, replicates to standbys, and a fresh
  // database starts from zero whatever an old audit log says.
  const loaded = await Promise.all([EpochFloor.load(pool, schema, clusterId, log), readCoordinatorState(pool, schema, clusterId)]).catch(async (err: unknown) => {
    await authority.close();
    throw toHaError(err, what("the epoch floor and the coordinator state"));
  });
  const [floor, durableState] = loaded;

  const store = new AuditStore(pool, schema);
  const audit = new AuditLog(shared.auditDir, clusterId, clock, { store, log: log.child({ component: "audit" }) });
  const truth = new DatabaseTruthPoller(pool, schema, clusterId, clock, log);
  const events = new LeaderEventLog(noLeader, () => clock.now());
  const sessions = new NodeSessions(clusterId, clock, log, { limits: policy, signal, commandTerm: shared.commandTerm });
  const failover = new DatabaseFailover({
    authority,
    pool,
    schema,
    clusterId,
    audit,
    clock,
    log: log.child({ component: "database-failover" }),
    contain: shared.containSuperseded,
    serverFence: shared.serverFence,
    changed: () => void truth.refresh(),
    acting: () => shared.tier.acting(),
  });
  const parts = { policy, sessions, truth, pool, schema, audit, clock, log, databases: failover, region: shared.region };
  // The engine attaches itself to the sessions and the poller; a recovery it
  // starts runs as an operation of that same engine.
  const engine = new Engine({
    ...parts,
    events,
    floor,
    signal,
    primaryHost: () => pool.target,
    durable: {
      loaded: durableState,
      writeMaintenance: (on, by, reason) => writeMaintenance(pool, schema, clusterId, on, by, reason),
      writeReconcileHold: (on, by, reason) => writeReconcileHold(pool, schema, clusterId, on, by, reason),
      writeAutomaticFailover: () => writeAutomaticFailover(pool, schema, clusterId),
      writeDesignation: (nodeId) => writeDesignation(pool, schema, clusterId, nodeId),
      termsNotAudited: async () => {
        const auditedEpoch = await store.highestLeaderChange(clusterId);
        return { auditedEpoch, terms: await readEpochsAbove(pool, schema, clusterId, auditedEpoch) };
      },
    },
    recover: async (self, target, reason) => {
      await recoverSplitBrain({ ...parts, engine: self }, { strategy: "promote-leader", operator: "system", reason, caller: "coordinator (automatic recovery)", force: false, targetNode: target });
    },
    standby: true,
    tier: shared.tier,
    leaseValid: () => shared.commandTerm() !== undefined,
  });
  const watchers = { count: 0 };
  let polling: Promise<unknown> = Promise.resolve();

  return {
    clusterId,
    policy,
    engine,
    ctx: { ...parts, engine },
    events,
    watchers,
    metrics: () => {
      const view = engine.view();
      const counters = engine.counters;
      return {
        clusterId,
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
    },
    run: async (phase = 0) => {
      await truth.refresh();
      polling = Promise.all([
        truth.run(policy.pollIntervalMs, signal, Math.round(phase * policy.pollIntervalMs)),
        // One host has nothing to compare: the truth read notices its promotions.
        shared.target.hosts.length > 1 ? failover.run(policy.pollIntervalMs, signal) : Promise.resolve(),
      ]);
    },
    auditWritten: () => audit.written(),
    close: async () => {
      await polling;
      await audit.close().catch(() => undefined);
      await authority.close();
    },
  };
}

import { systemClock, type Clock } from "../core/clock.js";
import { describeError, toHaError } from "../core/errors.js";
import type { Logger } from "../core/log.js";
import { noLeader, unknownReplication, type CommandOutcome, type NodeCommand, type NodeReport } from "../core/model.js";
import { commandTermRefusal } from "../db/coordinator-term.js";
import { parseDatabaseUrl } from "../db/connect.js";
import { readDatabaseIdentity } from "../db/leadership.js";
import { migrate } from "../db/migrations.js";
import { SideConnection } from "../db/side-connection.js";
import { serve, type RunningServer } from "../rpc/server.js";
import { listenerMetrics } from "../rpc/auth/listener-metrics.js";
import { VERSION } from "../core/version.js";
import type { AgentConfig } from "./config.js";
import { Elector, type ElectionSnapshot } from "./election/elector.js";
import { COORDINATED_CAMPAIGN_MS } from "./election/readiness.js";
import { LockSession } from "./election/lock-session.js";
import { DatabaseAuthority } from "../db/database-authority.js";
import { lockDatabaseLabel } from "../core/lock-database.js";
import { buildReport, type ProbeResults } from "./node-report.js";
import { LocalDatabaseProbe } from "./probes/local-database.js";
import { ReplicationProbe } from "./probes/replication.js";
import { ReportStream } from "./report-stream.js";
import { agentAdminService } from "./serve/admin-service.js";
import { agentHttpRoutes } from "./serve/http-routes.js";
import { LeaderEventLog, leaderChange } from "../core/leader-event-log.js";
import { leaderServiceFor } from "../rpc/leader-service.js";

export interface RunningAgent {
  /** http://host:port of the node's gRPC and HTTP endpoints. */
  readonly url: string;
  report(): NodeReport;
  /** Stops everything; a leader resigns first so its successor takes over at once. */
  stop(): Promise<void>;
}

/**
 * Starts an agent: applies migrations, then runs the election, the probes,
 * the node's endpoints and (when configured) the report stream.
 */
export async function startAgent(config: AgentConfig, log: Logger, clock: Clock = systemClock): Promise<RunningAgent> {
  const target = parseDatabaseUrl(config.databaseUrl, "--database-url");
  let elector: Elector | undefined;
  const authority = new DatabaseAuthority({
    target,
    schema: config.schema,
    clusterId: config.clusterId,
    nodeId: config.nodeId,
    connectTimeoutMs: config.connectTimeoutMs,
    log: log.child({ component: "authority" }),
    changed: () => elector?.reconsider(),
  });
  const side = new SideConnection(target, {
    applicationName: `${config.nodeId}/observer`,
    connectTimeoutMs: config.connectTimeoutMs,
    onError: (err) => log.debug({ err: err.message }, "observer connection error"),
    accept: authority.accept(),
  });
  try {
    // Look at every server first, so a primary a promotion left behind is
    // refused before anything (the migrations included) runs on it.
    await authority.look();
    const applied = await migrate(await side.connected(), config.schema);
    if (applied.applied.length > 0) log.info({ applied: applied.applied, schema: config.schema.name }, "applied schema migrations");
  } catch (err) {
    await Promise.all([side.close(), authority.close()]);
    throw toHaError(err, `cannot prepare the lock database (${target.hosts.join(",")})`);
  }

  // Refuse at once, with the reason, when the lock would mean nothing (a
  // transaction-mode pooler); the election would otherwise retry forever.
  try {
    const probe = await LockSession.open({
      target,
      nodeId: config.nodeId,
      clusterId: config.clusterId,
      schema: config.schema,
      connectTimeoutMs: config.connectTimeoutMs,
      cancel: async () => undefined,
      statementLockTimeoutMs: config.leaseMs,
      authority,
      warmUp: false,
    });
    await probe.close();
  } catch (err) {
    await Promise.all([side.close(), authority.close()]);
    throw err;
  }

  const thresholds = { warnSeconds: config.lagWarnSeconds, criticalSeconds: config.lagCriticalSeconds };
  const replicationProbe = new ReplicationProbe(side, thresholds, () => clock.monotonicMs());
  const local = config.localDatabaseUrl
    ? new SideConnection(parseDatabaseUrl(config.localDatabaseUrl, "--local-database-url"), {
        applicationName: `${config.nodeId}/probe`,
        connectTimeoutMs: config.connectTimeoutMs,
      })
    : undefined;
  const localProbe = local ? new LocalDatabaseProbe(local, thresholds) : undefined;
  let streams: ReportStream[] = [];
  elector = new Elector(config, target, side, authority, clock, log.child({ component: "election" }), {
    connected: () => streams.some((s) => s.connected),
    startupGraceMs: config.coordinatorUrl ? COORDINATED_CAMPAIGN_MS : 0,
  });
  const leaders = new LeaderEventLog(noLeader, () => clock.now());

  let probes: ProbeResults = { replication: unknownReplication, localDatabase: undefined, lockDatabase: undefined, lockDatabaseWritable: false };
  let sequence = 0;
  let server: RunningServer | undefined;
  const endpoint = () => server?.url ?? `http://${config.listenHost}:${config.listenPort}`;
  const report = (): NodeReport =>
    buildReport(config, elector.snapshot(), elector.readiness(), probes, { sequence: ++sequence, sentAt: clock.now(), endpoint: endpoint(), version: VERSION });

  // A command is obeyed only when the lock database says its sender is the
  // active coordinator: a deposed one that has not noticed yet is refused.
  const execute = async (command: NodeCommand): Promise<CommandOutcome> => {
    const refusal = await commandTermRefusal(side.db, config.schema, command.coordinatorTerm ?? 0).catch(
      (err: unknown) => `its coordinator term cannot be checked in the lock database (${describeError(err)})`,
    );
    if (refusal === undefined) return elector.execute(command);
    // A hold of a node that holds no term only takes it out of the race: it
    // is obeyed unverified, so a node left on a superseded server (where the
    // active coordinator's term cannot be read) is still contained.
    if (command.action.kind === "hold" && !report().sessionLockHeld) {
      log.warn({ command_id: command.commandId, coordinator_term: command.coordinatorTerm ?? 0 }, `obeying a hold whose coordinator term cannot be confirmed (${refusal}): it only keeps this node from campaigning`);
      return elector.execute(command);
    }
    log.warn({ command_id: command.commandId, action: command.action.kind, coordinator_term: command.coordinatorTerm ?? 0 }, `refused a ${command.action.kind} command: ${refusal}`);
    return { commandId: command.commandId, result: "refused", message: `refused: ${refusal}`, epoch: 0, resignedAt: undefined };
  };
  // Every coordinator of the tier gets the reports (a standby keeps a full
  // view, so it can take over at once); only the active one gives orders.
  streams = (config.coordinatorUrl?.split(",") ?? []).map(
    (coordinatorUrl) =>
      new ReportStream({
        coordinatorUrl,
        credentials: config.coordinatorCredentials,
        nodeId: config.nodeId,
        clusterId: config.clusterId,
        reportIntervalMs: config.reportIntervalMs,
        report,
        execute,
        clock,
        log: log.child({ component: "report-stream", coordinator: coordinatorUrl }),
        connectionChanged: () => elector.reconsider(),
      }),
  );

  const onChange = () => {
    const next = report().observedLeader;
    const change = leaderChange(leaders.leader, next);
    if (change) leaders.publish(change.kind, next, change.message);
    for (const s of streams) s.notifyChange();
  };
  elector.on("change", onChange);

  const stopped = new AbortController();
  const probeLoop = (async () => {
    while (!stopped.signal.aborted) {
      const [replication, localDatabase, identity] = await Promise.all([
        replicationProbe.measure(),
        localProbe?.measure(),
        readDatabaseIdentity(side.db).catch(() => undefined),
        authority.look(),
      ]);
      const before = probes;
      // The lock session's own server when there is one: that is where a term lives.
      const lockServer = elector.snapshot().lockServer?.reading;
      probes = {
        replication,
        localDatabase,
        lockDatabase: lockServer
          ? { systemIdentifier: lockServer.systemIdentifier, timeline: lockServer.timeline }
          : identity
            ? { systemIdentifier: identity.systemIdentifier, timeline: identity.timeline }
            : before.lockDatabase,
        lockDatabaseWritable: lockServer ? !lockServer.inRecovery : identity ? !identity.inRecovery : false,
      };
      elector.setSyncReplicas(replication.syncReplicaCount);
      if (
        before.replication.lagStatus !== replication.lagStatus ||
        before.localDatabase?.lagStatus !== localDatabase?.lagStatus ||
        lockDatabaseLabel(before.lockDatabase) !== lockDatabaseLabel(probes.lockDatabase)
      ) {
        log.info({ lagStatus: replication.lagStatus, maxReplayLagSeconds: replication.maxReplayLagSeconds }, `replication lag ${replication.lagStatus}`);
        onChange();
      }
      await clock.sleep(config.probeIntervalMs, stopped.signal).catch(() => undefined);
    }
  })().catch((err: unknown) => log.error({ err: describeError(err) }, "probe loop stopped"));

  try {
    server = await serve({
      host: config.listenHost,
      port: config.listenPort,
      log,
      http: agentHttpRoutes(report, () => listenerMetrics(config.security?.auth, config.listenHost), { leaders, clock }, () => clusterView(report(), elector.snapshot(), authority, config.region)),
      auth: config.security?.auth,
      insecureListen: config.security?.insecureListen,
      healthListen: config.security?.healthListen,
      services: [
        leaderServiceFor(leaders, { now: () => clock.now() }),
        agentAdminService({ nodeId: config.nodeId, clusterId: config.clusterId, coordinatorUrl: config.coordinatorUrl, credentials: config.coordinatorCredentials, minSyncReplicas: config.minSyncReplicas, report, log }),
      ],
    });
  } catch (err) {
    stopped.abort();
    await probeLoop;
    await Promise.all([side.close(), local?.close(), authority.close()]);
    throw toHaError(err, `cannot listen on ${config.listenHost}:${config.listenPort}`);
  }

  onChange();
  elector.start();
  for (const s of streams) s.start();
  log.info(
    { url: server.url, nodeId: config.nodeId, cluster: config.clusterId, coordinator: config.coordinatorUrl ?? null, priority: config.priority },
    `agent ${config.nodeId} listening on ${server.url}`,
  );

  let stopping: Promise<void> | undefined;
  return {
    url: server.url,
    report,
    stop: () =>
      (stopping ??= (async () => {
        await elector.stop();
        onChange();
        await Promise.all(streams.map((s) => s.stop()));
        stopped.abort();
        await probeLoop;
        await server?.close();
        await Promise.all([side.close(), local?.close(), authority.close()]);
        log.info("agent stopped");
      })()),
  };
}

/**
 * Seed 004 §5's RTO check as this node sees it, for the `cluster` object of
 * its /readyz: writes are usable when the leader it observes is Write-Ready on
 * the server its lock session is on, and no promotion superseded that server.
 */
function clusterView(r: NodeReport, election: ElectionSnapshot, authority: DatabaseAuthority, region: string): Record<string, unknown> {
  const server = election.lockServer && authority.freshReading(election.lockServer);
  const leader = r.observedLeader;
  const reason = !server
    ? r.databaseError ? `no lock database: ${r.databaseError}` : "no lock session yet"
    : server.fenced
      ? `the lock database is fenced: ${server.fenced}`
      : !leader.holderId
        ? "no leader"
        : !leader.writeReady
          ? `leader ${leader.holderId} is not Write-Ready`
          : "";
  return {
    writes_usable: reason === "",
    ...(reason ? { reason } : {}),
    writer: {
      node_id: leader.holderId || null,
      system_identifier: server?.systemIdentifier ?? null,
      timeline: server?.timeline ?? null,
      writer_region: (leader.holderId === r.nodeId ? region : server?.lastPromotion?.region) || null,
    },
    highest_epoch: r.highestEpochSeen,
    last_promotion: server?.lastPromotion
      ? { at: server.lastPromotion.stampedAt.toISOString(), timeline: server.lastPromotion.timeline, stamp: server.lastPromotion.stampedEpoch, rto_ms: null }
      : null,
  };
}

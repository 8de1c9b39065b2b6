import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { HaAdminService, type GetStatusResponseSchema } from "../../gen/autonomy/ha/v1/admin_pb.js";
import { ErrorCode, HaError, unavailable } from "../../core/errors.js";
import type { Logger } from "../../core/log.js";
import { CALLER_HEADER, FORWARDED_BY_HEADER, IDEMPOTENCY_KEY_HEADER } from "../../core/metadata.js";
import type { NodeReport } from "../../core/model.js";
import { clientFor, type ClientCredentials } from "../../rpc/client.js";
import { FORWARDED_PRINCIPAL_HEADER, forwardedPrincipalHeader } from "../../rpc/auth/authenticator.js";
import type { CallContext } from "../../rpc/service-adapter.js";
import { registration, type ServiceRegistration } from "../../rpc/service-adapter.js";
import { fromConnectError } from "../../rpc/status.js";
import { leaderToWire, nodeStatusToWire, replicationToWire } from "../../rpc/wire.js";

export interface AgentAdminOptions {
  readonly nodeId: string;
  readonly clusterId: string;
  readonly coordinatorUrl: string | undefined;
  /** The agent's own credentials for the coordinator; the operator it forwards for is named in a header. */
  readonly credentials?: ClientCredentials;
  readonly minSyncReplicas: number;
  readonly report: () => NodeReport;
  readonly log: Logger;
}

/**
 * HaAdminService on an agent's port, so the runbooks work with
 * --orchestrator-url naming any node: GetStatus is answered for this node
 * (with every node's row from the coordinator when it is reachable); the rest
 * is forwarded to the coordinator. A forwarded TriggerFailover names this
 * node as the expected leader, so asking a non-leader is refused with
 * "not the leader; leader is X", as seed 000 describes.
 */
export function agentAdminService(options: AgentAdminOptions): ServiceRegistration {
  // One client (one HTTP/2 connection) for every forwarded call; who asked
  // travels per call in the headers.
  const client = options.coordinatorUrl
    ? clientFor(HaAdminService, options.coordinatorUrl, {
        metadata: { [FORWARDED_BY_HEADER]: `agent ${options.nodeId}` },
        timeoutMs: 60_000,
        credentials: options.credentials,
        // A request that names no cluster is about this node's.
        clusterId: options.clusterId,
      })
    : undefined;
  const coordinator = (ctx: CallContext) => {
    if (!client) throw unavailable(`agent ${options.nodeId} runs without --coordinator-url; send this call to the coordinator`);
    return client;
  };
  // This port already authenticated and authorized the caller; the
  // coordinator takes the caller's name and roles from an agent only.
  // The caller's idempotency key travels on, so a retried request is still one request.
  const as = (ctx: CallContext) => {
    const key = ctx.metadata.get(IDEMPOTENCY_KEY_HEADER);
    return { signal: ctx.signal, headers: { [FORWARDED_PRINCIPAL_HEADER]: forwardedPrincipalHeader(ctx.principal), ...(key ? { [IDEMPOTENCY_KEY_HEADER]: key } : {}) } };
  };
  const forward = async <T>(call: () => Promise<T>): Promise<T> => {
    try {
      return await call();
    } catch (err) {
      // The coordinator's own refusals pass through word for word.
      const e = fromConnectError(err);
      if (e.code === ErrorCode.Unavailable) throw unavailable(`cannot reach the coordinator at ${options.coordinatorUrl}: ${e.message}`, err);
      throw e;
    }
  };

  // Seed 000 points the failover at the leader's node: this node is then the
  // expected leader. With no leader at all (after manual-reconcile), seed 002
  // triggers the failover "from the correct node": this node is the target.
  const asThisNode = <R extends { expectedLeader: string; targetNode: string }>(request: R): R => {
    if (request.expectedLeader || request.targetNode) return request;
    return options.report().observedLeader.holderId === ""
      ? { ...request, targetNode: options.nodeId }
      : { ...request, expectedLeader: options.nodeId };
  };

  return registration(HaAdminService, {
    getStatus: async (request, ctx) => {
      if (request.nodeId && request.nodeId !== options.nodeId) return forward(() => coordinator(ctx).getStatus(request, as(ctx)));
      const local = localStatus(options);
      if (!options.coordinatorUrl) return local;
      try {
        const cluster = await coordinator(ctx).getStatus({ clusterId: request.clusterId }, { ...as(ctx), timeoutMs: 1_000 });
        return { ...local, nodes: cluster.nodes, maintenance: cluster.maintenance, splitBrainDetected: cluster.splitBrainDetected };
      } catch (err) {
        options.log.debug({ err: fromConnectError(err).message }, "status without the coordinator's node rows");
        return local;
      }
    },
    triggerFailover: (request, ctx) => forward(() => coordinator(ctx).triggerFailover(asThisNode(request), as(ctx))),
    detectSplitBrain: (request, ctx) => forward(() => coordinator(ctx).detectSplitBrain(request, as(ctx))),
    recoverSplitBrain: (request, ctx) => forward(() => coordinator(ctx).recoverSplitBrain(request, as(ctx))),
    queryAudit: (request, ctx) => forward(() => coordinator(ctx).queryAudit(request, as(ctx))),
    setMaintenance: (request, ctx) => forward(() => coordinator(ctx).setMaintenance(request, as(ctx))),
    getHistory: (request, ctx) => forward(() => coordinator(ctx).getHistory(request, as(ctx))),
    listClusters: (request, ctx) => forward(() => coordinator(ctx).listClusters(request, as(ctx))),
  });
}

function localStatus(options: AgentAdminOptions): MessageInitShape<typeof GetStatusResponseSchema> {
  const r = options.report();
  if (r.clusterId === "") throw new HaError(ErrorCode.Unavailable, "agent is starting");
  const sync = r.replication.syncReplicaCount;
  return {
    clusterId: r.clusterId,
    nodeId: r.nodeId,
    role: r.role,
    sessionLockHeld: r.sessionLockHeld,
    writeReady: r.writeReady,
    queriedAt: timestampFromDate(new Date()),
    leader: leaderToWire(r.observedLeader),
    // Without a leader there is no write quorum to speak of, whatever the standbys say.
    quorum:
      r.observedLeader.holderId === ""
        ? { writeReady: false, syncReplicas: sync, minSyncReplicas: options.minSyncReplicas, unknownReason: "no leader" }
        : { writeReady: sync >= options.minSyncReplicas, syncReplicas: sync, minSyncReplicas: options.minSyncReplicas },
    replication: replicationToWire(r.replication),
    nodes: [nodeStatusToWire(r, true)],
    answeredBy: `agent ${r.nodeId}`,
  };
}

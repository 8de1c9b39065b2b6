import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import {
  HaAdminService,
  RecoverSplitBrainRequestSchema,
  RecoverSplitBrainResponseSchema,
  RecoveryStrategy,
  SetMaintenanceRequestSchema,
  SetMaintenanceResponseSchema,
  TriggerFailoverRequestSchema,
  TriggerFailoverResponseSchema,
  type AuditEventSchema,
} from "../../gen/autonomy/ha/v1/admin_pb.js";
import { IDEMPOTENCY_KEY_HEADER } from "../../core/metadata.js";
import type { LeaderView } from "../../core/model.js";
import { notActive, soleCoordinator, type CoordinatorTier } from "../ha/tier.js";
import type { RequestLedger, Takeover } from "../ha/request-ledger.js";
import { AgentService } from "../../gen/autonomy/ha/v1/agent_pb.js";
import { ErrorCode, HaError, asPreconditionRefusal, invalidArgument } from "../../core/errors.js";
import { readEpochs } from "../../db/leadership.js";
import { date, leaderToWire, ts } from "../../rpc/wire.js";
import { registration, type CallContext, type ServiceRegistration } from "../../rpc/service-adapter.js";
import type { AuditEvent } from "../audit/audit-event.js";
import { termHistory } from "../audit/term-history.js";
import type { LeaderEventLog } from "../../core/leader-event-log.js";
import { leaderServiceFor } from "../../rpc/leader-service.js";
import { checkCluster, requireRequester, type OperationContext } from "./operation-context.js";
import { plannedFailover } from "./planned-failover.js";
import { recoverSplitBrain, type RecoveryStrategy as Strategy } from "./split-brain-recovery.js";
import { statusResponse } from "./status.js";

/**
 * The caller for the audit log: the principal the transport proved (a
 * certificate subject or a token name, and the agent that forwarded the call)
 * and the peer address. Never a header the client set.
 */
export function callerOf(ctx: CallContext): string {
  return `${ctx.principal.name} (${ctx.peer})`;
}

function auditToWire(e: AuditEvent): MessageInitShape<typeof AuditEventSchema> {
  return {
    id: e.id,
    time: ts(new Date(e.time)),
    category: e.category,
    type: e.type,
    operator: e.operator,
    reason: e.reason,
    requestId: e.request_id,
    caller: e.caller,
    nodeId: e.node_id,
    epoch: BigInt(Math.max(0, Math.trunc(e.epoch))),
    clusterId: e.cluster_id,
    message: e.message,
    evidence: JSON.parse(JSON.stringify(e.evidence)) as Record<string, never>,
  };
}

/** A failover or recovery refused by a precondition says so first, in the runbooks' words (their 409). */
function refusing<T>(operation: Promise<T>): Promise<T> {
  return operation.catch((err: unknown) => Promise.reject(asPreconditionRefusal(err)));
}

const strategies: Record<number, Strategy | undefined> = {
  [RecoveryStrategy.PROMOTE_LEADER]: "promote-leader",
  [RecoveryStrategy.MANUAL_RECONCILE]: "manual-reconcile",
};

/** What makes a coordinator one of several: its role, and the ledger that makes admin requests idempotent. */
export interface TierParts {
  readonly tier: CoordinatorTier;
  readonly ledger?: RequestLedger;
  /** Every cluster the coordinator serves, for ListClusters (default: this one). */
  readonly clusters?: () => readonly OperationContext[];
}

/** The coordinator's three gRPC services over the live parts. */
export function coordinatorServices(ctx: OperationContext, events: LeaderEventLog, watchers: { count: number }, parts: TierParts = { tier: soleCoordinator() }): ServiceRegistration[] {
  const { engine, policy, clock, audit } = ctx;
  const { tier, ledger } = parts;
  const clusters = parts.clusters ?? (() => [ctx]);

  /**
   * A mutation runs only on the active coordinator (a standby answers where
   * it is), once per idempotency key: a retry returns the first answer.
   */
  const mutation = <I extends DescMessage, O extends DescMessage>(
    method: string,
    input: I,
    output: O,
    run: (request: MessageShape<I>, call: CallContext, takeover: Takeover | undefined) => Promise<MessageInitShape<O>>,
  ) =>
    async (request: MessageShape<I>, call: CallContext): Promise<MessageInitShape<O>> => {
      if (!tier.acting()) throw notActive(tier.role(), method);
      if (!ledger) return run(request, call, undefined);
      return ledger.handle(
        {
          key: call.metadata.get(IDEMPOTENCY_KEY_HEADER),
          method,
          clusterId: policy.clusterId,
          request: toBinary(input, request),
          leaderEpoch: engine.leader().epoch,
          run: (takeover) => run(request, call, takeover),
          encode: (response) => toBinary(output, create(output, response)),
          decode: (bytes) => fromBinary(output, bytes) as MessageInitShape<O>,
        },
        call.signal,
      );
    };
  const agent = registration(AgentService, { connect: (requests, call) => ctx.sessions.connect(requests, call) });

  const leader = leaderServiceFor(events, {
    now: () => clock.now(),
    checkCluster: (clusterId) => checkCluster(clusterId, policy),
    onWatcher: (delta) => (watchers.count += delta),
  });

  const admin = registration(HaAdminService, {
    getStatus: async (req) => {
      checkCluster(req.clusterId, policy);
      const view = engine.view();
      if (req.nodeId !== "" && !view.nodes.some((n) => n.nodeId === req.nodeId)) {
        throw new HaError(ErrorCode.NotFound, `unknown node ${req.nodeId.slice(0, 100)}; known nodes: ${view.nodes.map((n) => n.nodeId).join(", ") || "none"}`);
      }
      return statusResponse(view, engine.leader(), req.nodeId, {
        queriedAt: clock.now(),
        splitBrain: engine.finding().finding.detected,
        timing: policy,
        nowMs: clock.monotonicMs(),
        database: { readiness: engine.clusterReadiness(), coordinatorRegion: ctx.region },
        coordinator: { ...tier.role(), role: tier.acting() ? "active" : "standby" },
      });
    },
    triggerFailover: mutation("TriggerFailover", TriggerFailoverRequestSchema, TriggerFailoverResponseSchema, async (req, call, takeover) => {
      checkCluster(req.clusterId, policy);
      const who = requireRequester(req.operator, req.reason, callerOf(call));
      const done = takeover && alreadyFailedOver(engine.leader(), takeover, req.targetNode.trim(), tier.role().term);
      if (done) return done;
      const r = await refusing(
        plannedFailover(ctx, {
          ...who,
          force: req.force,
          targetNode: req.targetNode.trim(),
          expectedLeader: req.expectedLeader.trim(),
          forwardedBy: "",
        }),
      );
      return {
        success: true,
        previousHolder: r.previousHolder,
        previousEpoch: BigInt(r.previousEpoch),
        resignedAt: ts(r.resignedAt),
        newHolder: r.newHolder,
        newEpoch: BigInt(r.newEpoch),
        message: r.message,
        requestId: r.requestId,
      };
    }),
    detectSplitBrain: async (req) => {
      checkCluster(req.clusterId, policy);
      await ctx.truth.refresh();
      engine.evaluate();
      const { finding, detectedAt } = engine.finding();
      return {
        splitBrainDetected: finding.detected,
        detectedAt: ts(detectedAt),
        epochDivergence: finding.epochDivergence,
        holderMismatch: finding.holderMismatch,
        unclosedEpochs: finding.unclosedEpochs,
        criteria: finding.criteria.map((c) => ({ name: c.name, detected: c.detected, detail: c.detail })),
        explanation: finding.explanation,
        checkedAt: ts(clock.now()),
      };
    },
    recoverSplitBrain: mutation("RecoverSplitBrain", RecoverSplitBrainRequestSchema, RecoverSplitBrainResponseSchema, async (req, call) => {
      checkCluster(req.clusterId, policy);
      const strategy = strategies[req.strategy];
      if (!strategy) {
        const got = req.strategy === RecoveryStrategy.UNSPECIFIED ? "none given" : `unknown value ${req.strategy}`;
        throw invalidArgument(`strategy: ${got}; allowed: ${RecoveryStrategy.PROMOTE_LEADER} (promote-leader), ${RecoveryStrategy.MANUAL_RECONCILE} (manual-reconcile)`);
      }
      const who = requireRequester(req.operator, req.reason, callerOf(call));
      const r = await refusing(recoverSplitBrain(ctx, { ...who, strategy, force: req.force, targetNode: req.targetNode.trim() }));
      return {
        success: true,
        strategy: r.strategy,
        recoveredAt: ts(r.recoveredAt),
        message: r.message,
        leaderId: r.leaderId,
        epoch: BigInt(r.epoch),
        resignedNodes: r.resignedNodes,
        requestId: r.requestId,
      };
    }),
    queryAudit: async (req) => {
      const events = await audit.query({ category: req.category, type: req.type, since: date(req.since), limit: req.limit, clusterId: req.clusterId });
      return { events: events.map(auditToWire) };
    },
    setMaintenance: mutation("SetMaintenance", SetMaintenanceRequestSchema, SetMaintenanceResponseSchema, async (req, call) => {
      checkCluster(req.clusterId, policy);
      const who = requireRequester(req.operator, req.reason, callerOf(call));
      const changedAt = clock.now();
      const { paused, message, notAudited } = await engine.setMaintenance(req.paused, who);
      return { paused, message: notAudited ? `${message}; WARNING: ${notAudited}` : message, changedAt: ts(changedAt) };
    }),
    listClusters: async () => ({
      clusters: clusters().map(({ engine: e, policy: p }) => {
        const view = e.view();
        return {
          clusterId: p.clusterId,
          leader: leaderToWire(e.leader()),
          nodes: view.nodes.length,
          connectedNodes: view.nodes.filter((n) => n.connected).length,
          maintenance: view.maintenance,
          splitBrainDetected: e.finding().finding.detected,
          databaseError: view.db && !view.db.reachable ? view.db.error || "unreachable" : "",
        };
      }),
      coordinator: coordinatorWire(tier),
    }),
    getHistory: async (req) => {
      checkCluster(req.clusterId, policy);
      const limit = req.limit === 0 ? 20 : Math.min(req.limit, 1000);
      const rows = await readEpochs(ctx.pool, ctx.schema, policy.clusterId, { limit });
      const actions = await audit.query({ limit: 10_000, clusterId: policy.clusterId });
      return {
        epochs: termHistory(rows, actions).map((t) => ({
          epoch: BigInt(t.epoch),
          holderId: t.holderId,
          acquiredAt: ts(t.acquiredAt),
          resignedAt: ts(t.resignedAt),
          endReason: t.endReason ?? "",
          operator: t.openedBy?.operator ?? "",
          reason: t.openedBy?.reason ?? "",
          openedBy: t.openedBy?.type ?? "",
          endedBy: t.endedBy?.type ?? "",
          endOperator: t.endedBy?.operator ?? "",
          endActionReason: t.endedBy?.reason ?? "",
        })),
      };
    },
  });
  return [agent, leader, admin];
}

/**
 * A failover that the coordinator which first took the request had already
 * carried out before it stopped: the leader is new since then (and is the
 * target, when one was named). Answered as done rather than failing over
 * again; otherwise undefined, and the failover runs.
 */
function alreadyFailedOver(
  leader: LeaderView,
  takeover: Takeover,
  target: string,
  term: number,
): MessageInitShape<typeof TriggerFailoverResponseSchema> | undefined {
  if (!leader.writeReady || leader.epoch <= takeover.leaderEpoch || (target !== "" && leader.holderId !== target)) return undefined;
  return {
    success: true,
    newHolder: leader.holderId,
    newEpoch: BigInt(leader.epoch),
    message: `failover completed: ${leader.holderId} leads at epoch ${leader.epoch} (done under coordinator term ${takeover.previousTerm}, which stopped before answering; confirmed by term ${term})`,
  };
}

function coordinatorWire(tier: CoordinatorTier) {
  const r = tier.role();
  return { coordinatorId: r.coordinatorId, role: tier.acting() ? "active" : "standby", term: BigInt(r.term), activeId: r.activeId, activeUrl: r.activeUrl };
}

import type { MessageInitShape } from "@bufbuild/protobuf";
import { HaAdminService, RecoveryStrategy, type AuditEventSchema } from "../../gen/autonomy/ha/v1/admin_pb.js";
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

/** The coordinator's three gRPC services over the live parts. */
export function coordinatorServices(ctx: OperationContext, events: LeaderEventLog, watchers: { count: number }): ServiceRegistration[] {
  const { engine, policy, clock, audit } = ctx;
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
      });
    },
    triggerFailover: async (req, call) => {
      checkCluster(req.clusterId, policy);
      const who = requireRequester(req.operator, req.reason, callerOf(call));
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
    },
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
    recoverSplitBrain: async (req, call) => {
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
    },
    queryAudit: async (req) => {
      const events = await audit.query({ category: req.category, type: req.type, since: date(req.since), limit: req.limit, clusterId: req.clusterId });
      return { events: events.map(auditToWire) };
    },
    setMaintenance: async (req, call) => {
      checkCluster(req.clusterId, policy);
      const who = requireRequester(req.operator, req.reason, callerOf(call));
      const changedAt = clock.now();
      const { paused, message, notAudited } = await engine.setMaintenance(req.paused, who);
      return { paused, message: notAudited ? `${message}; WARNING: ${notAudited}` : message, changedAt: ts(changedAt) };
    },
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

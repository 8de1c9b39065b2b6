import { unknownReplication } from "../../core/model.js";
import { leaderFields, replicationJson } from "../../rpc/health-json.js";
import { HttpRouter } from "../../rpc/http-router.js";
import { nodeById } from "../view/cluster-view.js";
import type { Engine } from "./engine.js";
import { clusterReadinessJson } from "./cluster-readiness.js";
import { hasRole } from "../../rpc/auth/principal.js";
import { metricsText, METRICS_CONTENT_TYPE, type Registry } from "../../rpc/metrics.js";
import { coordinatorMetrics, type MetricsSnapshot } from "./metrics.js";
import type { ClusterEventSources } from "./ui/cluster-events.js";
import { addClusterUi } from "./ui/ui-routes.js";
import { soleCoordinator, type CoordinatorTier } from "../ha/tier.js";

/** The coordinator tier in /readyz: the role for anyone, who is active for a caller with the read role. */
function coordinatorJson(tier: CoordinatorTier, detail: boolean): Record<string, unknown> {
  const r = tier.role();
  const role = tier.acting() ? "active" : "standby";
  return detail ? { id: r.coordinatorId, role, term: r.term, active_id: r.activeId || null, active_url: r.activeUrl || null } : { role };
}

/** Whether the cluster has a Write-Ready leader, and who. */
function clusterWriteReady(engine: Engine) {
  const leader = engine.leader();
  return {
    ready: leader.writeReady,
    holder_id: leader.holderId,
    epoch: leader.epoch,
    ...(leader.writeReady ? {} : { reason: leader.holderId ? `leader ${leader.holderId} is not Write-Ready` : "no leader" }),
  };
}

/**
 * The runbooks' curl paths, answered for the whole cluster: the leader's
 * health and replication as the coordinator sees them, plus liveness,
 * readiness and Prometheus metrics.
 */
export function coordinatorRoutes(engine: Engine, metrics: () => MetricsSnapshot | readonly MetricsSnapshot[], listener?: () => Registry, ui?: ClusterEventSources, tier: CoordinatorTier = soleCoordinator()): HttpRouter {
  const registries = [coordinatorMetrics(metrics), ...(listener ? [listener()] : [])];
  const leaderNode = () => {
    const leader = engine.leader();
    return { leader, node: leader.holderId ? nodeById(engine.view(), leader.holderId) : undefined };
  };
  const router = new HttpRouter()
    .get("/v1/health/leader", () => {
      const { leader, node } = leaderNode();
      // With a leader the coordinator read in pg_locks but no report (yet), the lock is held all the same.
      const lockHeld = leader.holderId !== "" && (node?.report.sessionLockHeld ?? true);
      return {
        json: {
          ...leaderFields(leader, lockHeld, leader.writeReady),
          answered_by: "coordinator",
          // While the lock database is unreachable this is the last reading.
          database_reachable: engine.view().db?.reachable === true,
        },
      };
    })
    // The answer in the body, always 200, so `curl -sf … | jq .` shows it.
    .get("/v1/health/write-ready", () => ({ json: clusterWriteReady(engine) }))
    // The same check as a status code, for load balancers and probes.
    .get("/v1/health/primary", () => {
      const json = clusterWriteReady(engine);
      return { status: json.ready ? 200 : 503, json };
    })
    .get("/v1/health/replication", () => {
      const { leader, node } = leaderNode();
      return { json: { holder_id: leader.holderId, ...replicationJson(node?.report.replication ?? unknownReplication) } };
    })
    .get("/v1/health/split-brain", () => {
      const { finding, detectedAt } = engine.finding();
      return {
        json: {
          split_brain_detected: finding.detected,
          detected_at: detectedAt?.toISOString() ?? null,
          epoch_divergence: finding.epochDivergence,
          holder_mismatch: finding.holderMismatch,
          unclosed_epochs: finding.unclosedEpochs,
          criteria: finding.criteria,
          explanation: finding.explanation,
        },
      };
    })
    .get("/healthz", () => ({ json: { status: "ok" } }))
    // Ready means this coordinator can read the lock database; `cluster` is
    // seed 004 §5's RTO check (writes_usable, the writer, highest_epoch).
    .get("/readyz", (request) => {
      const db = engine.view().db;
      const ready = db?.reachable === true;
      return {
        status: ready ? 200 : 503,
        json: {
          ready,
          database: ready ? "reachable" : db?.error || "not read yet",
          // A standby is ready too: it serves every read and says where the active one is.
          coordinator: coordinatorJson(tier, hasRole(request.principal, "read")),
          // Nodes, servers and epochs are for a caller with the read role, not for an unauthenticated probe.
          ...(hasRole(request.principal, "read") ? { cluster: clusterReadinessJson(engine.clusterReadiness()) } : {}),
        },
      };
    })
    .get("/metrics", async () => ({ text: await metricsText(...registries), contentType: METRICS_CONTENT_TYPE }));
  // The live web view (docs/web-view.md) at / on the same port.
  return ui ? addClusterUi(router, ui) : router;
}

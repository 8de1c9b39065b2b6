import type { NodeReport } from "../../core/model.js";
import { HttpRouter } from "../../rpc/http-router.js";
import { hasRole } from "../../rpc/auth/principal.js";
import { leaderJson, replicationJson, writeReadyJson } from "../../rpc/health-json.js";
import { metricsText, METRICS_CONTENT_TYPE, type Registry } from "../../rpc/metrics.js";
import { agentMetrics } from "./metrics.js";
import { addNodeUi, type NodeEventSources } from "./ui-routes.js";

/**
 * The node's HTTP paths (seed 000 §3–4): leader, write-ready (always 200 with
 * the answer in the body, so `curl -sf … | jq .` shows it), the same check as
 * a status code for load balancers (primary: 200 only on the Write-Ready
 * leader; replica: 200 on a healthy non-leader), replication, liveness,
 * readiness and Prometheus metrics.
 */
export function agentHttpRoutes(
  report: () => NodeReport,
  listener?: () => Registry,
  ui?: Omit<NodeEventSources, "report">,
  cluster?: () => Record<string, unknown>,
): HttpRouter {
  const metrics = [agentMetrics(report), ...(listener ? [listener()] : [])];
  const router = new HttpRouter()
    .get("/v1/health/leader", () => ({ json: leaderJson(report()) }))
    .get("/v1/health/write-ready", () => ({ json: writeReadyJson(report()) }))
    .get("/v1/health/primary", () => {
      const r = report();
      return { status: r.writeReady ? 200 : 503, json: writeReadyJson(r) };
    })
    .get("/v1/health/replica", () => {
      const r = report();
      const why = replicaRefusal(r);
      return { status: why ? 503 : 200, json: { replica: why === "", node_id: r.nodeId, role: r.role, ...(why ? { reason: why } : {}) } };
    })
    .get("/v1/health/replication", () => {
      const r = report();
      return {
        json: {
          ...replicationJson(r.replication),
          ...(r.localDatabase
            ? {
                local: {
                  reachable: r.localDatabase.reachable,
                  in_recovery: r.localDatabase.inRecovery,
                  timeline: r.localDatabase.timeline,
                  receive_lsn: r.localDatabase.receiveLsn,
                  replay_lsn: r.localDatabase.replayLsn,
                  replay_lag_seconds: r.localDatabase.replayLagSeconds,
                  lag_status: r.localDatabase.lagStatus,
                  streaming: r.localDatabase.streaming,
                  ...(r.localDatabase.error ? { error: r.localDatabase.error } : {}),
                },
              }
            : {}),
        },
      };
    })
    .get("/healthz", () => ({ json: { status: "ok" } }))
    .get("/readyz", (request) => {
      const r = report();
      const ready = r.role !== "disconnected" && r.databaseError === "";
      // Nodes, servers and epochs are for a caller with the read role, not for an unauthenticated probe.
      const detail = cluster && hasRole(request.principal, "read") ? { cluster: cluster() } : {};
      return {
        status: ready ? 200 : 503,
        json: { ready, role: r.role, ...(r.databaseError ? { error: r.databaseError } : {}), ...detail },
      };
    })
    .get("/metrics", async () => ({ text: await metricsText(...metrics), contentType: METRICS_CONTENT_TYPE }));
  // The node's own live page (docs/web-view.md).
  return ui ? addNodeUi(router, { ...ui, report }) : router;
}

/**
 * Why this node is not a healthy replica to send reads to, or "" when it is:
 * a follower (or held) that reaches the lock database, claims no authority,
 * and whose own server (when it has one) is reachable and not critically behind.
 */
export function replicaRefusal(r: NodeReport): string {
  if (r.writeReady || r.sessionLockHeld || r.role === "leader") return "this node is the leader";
  if (r.role !== "follower" && r.role !== "held") return `this node is ${r.role}`;
  if (r.databaseError !== "") return `lock database unreachable: ${r.databaseError}`;
  const local = r.localDatabase;
  if (local && !local.reachable) return `its own PostgreSQL is unreachable${local.error ? `: ${local.error}` : ""}`;
  if (local && local.lagStatus === "critical") return `its own PostgreSQL replays ${local.replayLagSeconds}s behind (critical)`;
  return "";
}

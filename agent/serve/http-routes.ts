import type { NodeReport } from "../../core/model.js";
import { HttpRouter } from "../../rpc/http-router.js";
import { leaderJson, replicationJson } from "../../rpc/health-json.js";
import { metricsText, METRICS_CONTENT_TYPE, type Registry } from "../../rpc/metrics.js";
import { agentMetrics } from "./metrics.js";

/**
 * The node's HTTP paths (seed 000 §3–4): leader, write-ready (200/503, for
 * load balancers), replication, liveness, readiness and Prometheus metrics.
 */
export function agentHttpRoutes(report: () => NodeReport, listener?: () => Registry): HttpRouter {
  const metrics = [agentMetrics(report), ...(listener ? [listener()] : [])];
  return new HttpRouter()
    .get("/v1/health/leader", () => ({ json: leaderJson(report()) }))
    .get("/v1/health/write-ready", () => {
      const r = report();
      return { status: r.writeReady ? 200 : 503, json: { ready: r.writeReady } };
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
    .get("/readyz", () => {
      const r = report();
      const ready = r.role !== "disconnected" && r.databaseError === "";
      return { status: ready ? 200 : 503, json: { ready, role: r.role, ...(r.databaseError ? { error: r.databaseError } : {}) } };
    })
    .get("/metrics", async () => ({ text: await metricsText(...metrics), contentType: METRICS_CONTENT_TYPE }));
}

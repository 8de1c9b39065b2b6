import type { Access } from "./authenticator.js";

/**
 * What each call needs. Reading the cluster needs read; changing it needs
 * admin; an agent stream needs an agent credential; health is open to
 * loopback probes. A path that is not listed needs admin, so a new method is
 * closed until someone decides otherwise.
 */
const MUTATING_ADMIN_METHODS = new Set(["TriggerFailover", "RecoverSplitBrain", "SetMaintenance"]);
const READ_ADMIN_METHODS = new Set(["GetStatus", "DetectSplitBrain", "QueryAudit", "GetHistory", "ListClusters"]);

export function grpcAccess(path: string): Access {
  const [, service = "", method = ""] = path.split("/");
  switch (service) {
    case "grpc.health.v1.Health":
      return "health";
    case "grpc.reflection.v1.ServerReflection":
    case "grpc.reflection.v1alpha.ServerReflection":
    case "autonomy.ha.v1.LeaderService":
      return "read";
    case "autonomy.ha.v1.AgentService":
      return "agent";
    case "autonomy.ha.v1.HaAdminService":
      return READ_ADMIN_METHODS.has(method) ? "read" : MUTATING_ADMIN_METHODS.has(method) ? "admin" : "admin";
    default:
      return "admin";
  }
}

/**
 * Reading over HTTP needs read; the health paths are also open to loopback
 * probes. Anything that is not a GET or HEAD, and anything under /v1/admin/
 * (the web view's failover and pause/resume), needs admin.
 */
export function httpAccess(rawPath: string, method = "GET"): Access {
  const path = rawPath.split("?")[0] ?? "";
  if ((method !== "GET" && method !== "HEAD") || path.startsWith("/v1/admin/")) return "admin";
  return path === "/healthz" || path === "/readyz" || path.startsWith("/v1/health/") ? "health" : "read";
}

/** For a test that keeps this table complete. */
export const classifiedAdminMethods = { read: READ_ADMIN_METHODS, mutating: MUTATING_ADMIN_METHODS };

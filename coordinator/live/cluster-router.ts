import type * as grpc from "@grpc/grpc-js";
import { fromBinary } from "@bufbuild/protobuf";
import { ErrorCode, HaError } from "../../core/errors.js";
import { CLUSTER_ID_HEADER } from "../../core/metadata.js";
import { HttpRouter } from "../../rpc/http-router.js";
import { toServiceError, type ServiceRegistration } from "../../rpc/service-adapter.js";

/** Queries that read across clusters when they name none (the audit holds every cluster's events). */
const ACROSS_CLUSTERS: ReadonlySet<string> = new Set(["QueryAudit", "ListClusters"]);

/**
 * Which of a coordinator's clusters a call is for: the one it names, or the
 * only one; a call that names none on a coordinator serving several is
 * refused with the list to choose from (except a query across all of them).
 */
export class ClusterChoice {
  constructor(readonly clusterIds: readonly string[]) {}

  pick(named: string, method = ""): string {
    if (named !== "") {
      if (this.clusterIds.includes(named)) return named;
      throw new HaError(ErrorCode.NotFound, `unknown cluster "${named.slice(0, 100)}"; this coordinator serves ${this.listed()}`);
    }
    if (this.clusterIds.length === 1 || ACROSS_CLUSTERS.has(method)) return this.clusterIds[0]!;
    throw new HaError(ErrorCode.InvalidArgument, `this coordinator serves ${this.clusterIds.length} clusters (${this.listed()}); name one: --cluster ID (cluster_id in the request, ?cluster=ID over HTTP)`);
  }

  private listed(): string {
    return this.clusterIds.map((id) => `"${id}"`).join(", ");
  }
}

/**
 * One set of gRPC services over several clusters' own: each call is handed
 * to the services of the cluster it names (cluster_id in the request; an
 * agent's report stream says it in the x-autonomy-cluster-id header).
 */
export function routeServices(perCluster: ReadonlyMap<string, readonly ServiceRegistration[]>, choice: ClusterChoice): ServiceRegistration[] {
  const sets = [...perCluster.values()];
  if (sets.length === 1) return [...sets[0]!];
  return sets[0]!.map((first, index) => {
    const implementation: grpc.UntypedServiceImplementation = {};
    for (const method of first.service.methods) {
      const bidi = method.methodKind === "bidi_streaming";
      implementation[method.name] = ((call: grpc.ServerUnaryCall<unknown, unknown>, callback?: grpc.sendUnaryData<unknown>) => {
        let clusterId: string;
        try {
          const named = bidi ? String(call.metadata.get(CLUSTER_ID_HEADER)[0] ?? "") : namedCluster(method.input, call.request);
          clusterId = choice.pick(named, method.name);
        } catch (err) {
          if (callback) callback(toServiceError(err));
          else call.emit("error", toServiceError(err));
          return;
        }
        const handler = perCluster.get(clusterId)![index]!.implementation[method.name] as (c: unknown, cb?: unknown) => void;
        handler(call, callback);
      }) as grpc.UntypedHandleCall;
    }
    return { service: first.service, definition: first.definition, implementation };
  });
}

/** The cluster_id a request names ("" when none, or when it does not decode: its handler answers that). */
function namedCluster(input: Parameters<typeof fromBinary>[0], bytes: unknown): string {
  try {
    const message = fromBinary(input, bytes as Uint8Array) as { clusterId?: unknown };
    return typeof message.clusterId === "string" ? message.clusterId : "";
  } catch {
    return "";
  }
}

/** The HTTP side: ?cluster=ID picks the cluster's routes; without it, the only (or first) cluster's. */
export function routeHttp(perCluster: ReadonlyMap<string, HttpRouter>, choice: ClusterChoice): HttpRouter {
  const routers = [...perCluster.values()];
  if (routers.length === 1) return routers[0]!;
  return HttpRouter.choosing((query) => {
    const named = query.get("cluster") ?? "";
    return perCluster.get(named === "" ? choice.clusterIds[0]! : choice.pick(named))!;
  });
}

import type { ListClustersResponse } from "../gen/autonomy/ha/v1/admin_pb.js";
import { adminClient, orchestratorUrl, rpcFailure } from "./admin-client.js";
import { ExitCode } from "./exit-codes.js";
import type { Subcommand } from "./ha-group.js";
import { emit, runLeaf, type LeafSpec } from "./ha-options.js";
import { num, table } from "./output/format.js";

/* `autonomy ha clusters`: every cluster the coordinator tier serves, with its leader. */

const TIMEOUT_MS = 10_000;

const spec = {
  command: "ha clusters",
  usage: "[--orchestrator-url URL] [--output text|json]",
  summary: "List the clusters the coordinators serve: each one's leader, epoch, nodes and state. Name one with --cluster on the other commands.",
  options: {},
  flags: [],
} as const satisfies LeafSpec<Record<string, never>>;

export const haClusters: Subcommand = {
  name: "clusters",
  summary: "every cluster the coordinators serve, with its leader",
  run: (argv) =>
    runLeaf(spec, argv, async ({ values, output, credentials }) => {
      const url = orchestratorUrl(spec.command, values["orchestrator-url"], credentials);
      const answer = await adminClient(url, TIMEOUT_MS, credentials)
        .listClusters({})
        .catch((err: unknown) => {
          throw rpcFailure(err, { command: spec.command, url, timeoutMs: TIMEOUT_MS, mutating: false });
        });
      emit(output, () => clustersText(answer), () => clustersJson(answer));
      return ExitCode.Ok;
    }),
};

function state(c: ListClustersResponse["clusters"][number]): string {
  const notes = [c.maintenance ? "paused" : "", c.splitBrainDetected ? "SPLIT-BRAIN" : "", c.databaseError ? `database: ${c.databaseError}` : ""].filter(Boolean);
  return notes.join(", ") || "ok";
}

export function clustersText(r: ListClustersResponse): string[] {
  const rows = table(
    ["CLUSTER", "LEADER", "EPOCH", "WRITE-READY", "NODES", "STATE"],
    r.clusters.map((c) => [
      c.clusterId,
      c.leader?.holderId || "-",
      String(num(c.leader?.epoch ?? 0n)),
      c.leader?.writeReady ? "yes" : "no",
      `${c.connectedNodes}/${c.nodes}`,
      state(c),
    ]),
  );
  const who = r.coordinator;
  return [...rows, ...(who ? ["", `Answered by ${who.coordinatorId} (${who.role}); active: ${who.activeId ? `${who.activeId} at ${who.activeUrl}` : "none right now"}`] : [])];
}

export function clustersJson(r: ListClustersResponse) {
  return {
    clusters: r.clusters.map((c) => ({
      cluster_id: c.clusterId,
      holder_id: c.leader?.holderId || null,
      epoch: num(c.leader?.epoch ?? 0n),
      write_ready: c.leader?.writeReady ?? false,
      nodes: c.nodes,
      connected_nodes: c.connectedNodes,
      maintenance: c.maintenance,
      split_brain_detected: c.splitBrainDetected,
      database_error: c.databaseError || null,
    })),
    coordinator: r.coordinator ? { coordinator_id: r.coordinator.coordinatorId, role: r.coordinator.role, active_id: r.coordinator.activeId || null, active_url: r.coordinator.activeUrl || null } : null,
  };
}

import { adminClient, orchestratorUrl, rpcFailure } from "./admin-client.js";
import { ExitCode } from "./exit-codes.js";
import type { Subcommand } from "./ha-group.js";
import { emit, runLeaf, type LeafSpec } from "./ha-options.js";
import { statusJson, statusText } from "./output/status.js";

/* `autonomy ha status` (seed 000 §1 and §3). */

const TIMEOUT_MS = 10_000;

const spec = {
  command: "ha status",
  usage: "[--node NODE] [--orchestrator-url URL] [--output text|json]",
  summary:
    "Show one node's view of leadership, quorum and replication, and a row per node. Without --node, the node at the URL answers (the leader when the URL is the coordinator).",
  options: { node: { type: "string" } },
  flags: [["--node NODE", "answer from this node's point of view"]],
} as const satisfies LeafSpec<{ node: { type: "string" } }>;

export const haStatus: Subcommand = {
  name: "status",
  summary: "leadership, quorum, replication and every node",
  run: (argv) =>
    runLeaf(spec, argv, async ({ values, output, credentials }) => {
      const url = orchestratorUrl(spec.command, values["orchestrator-url"], credentials);
      const status = await adminClient(url, TIMEOUT_MS, credentials)
        .getStatus({ nodeId: values.node ?? "" })
        .catch((err: unknown) => {
          throw rpcFailure(err, { command: spec.command, url, timeoutMs: TIMEOUT_MS, mutating: false });
        });
      emit(output, () => statusText(status), () => statusJson(status));
      return ExitCode.Ok;
    }),
};

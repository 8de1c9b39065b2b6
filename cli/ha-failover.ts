import { adminClient, orchestratorUrl, rpcFailure } from "./admin-client.js";
import { ExitCode } from "./exit-codes.js";
import { group, type Subcommand } from "./ha-group.js";
import { CliExit, emit, mutationFlagHelp, mutationOptions, operatorAndReason, runLeaf, type LeafSpec } from "./ha-options.js";
import { failoverJson, failoverText } from "./output/failover.js";
import { oneLine } from "./output/format.js";

/* `autonomy ha failover trigger` (seed 000 §2): planned failover, refused (exit 3) when a precondition fails. */

/** The server resigns, waits for the successor's campaign and confirms it; that can take a while. */
const TIMEOUT_MS = 60_000;

const options = { ...mutationOptions, force: { type: "boolean" }, target: { type: "string" } } as const;

const spec = {
  command: "ha failover trigger",
  usage: "--operator NAME --reason TEXT [--force] [--target NODE] [--orchestrator-url URL]",
  summary:
    "Move write authority from the leader to a successor: the leader resigns (closing its epoch) and the successor campaigns for the next epoch. Point --orchestrator-url at the leader: a non-leader node refuses with \"not the leader; leader is X\".",
  options,
  flags: [
    ...mutationFlagHelp,
    ["--force", "fail over even when replication lag is critical (risks losing recent writes)"],
    ["--target NODE", "the successor to promote (default: chosen by priority, lag and sync state)"],
  ],
  notes: ["Refused (exit 3) when the URL's node is not the leader, when lag is critical without --force, or when no successor is eligible."],
} as const satisfies LeafSpec<typeof options>;

const trigger: Subcommand = {
  name: "trigger",
  summary: "planned failover to a successor",
  run: (argv) =>
    runLeaf(spec, argv, async ({ values, output, env, credentials }) => {
      const who = operatorAndReason(spec.command, values, env);
      const url = orchestratorUrl(spec.command, values["orchestrator-url"], credentials);
      const result = await adminClient(url, TIMEOUT_MS, credentials)
        .triggerFailover({ ...who, force: values.force ?? false, targetNode: values.target ?? "" })
        .catch((err: unknown) => {
          throw rpcFailure(err, { command: spec.command, url, timeoutMs: TIMEOUT_MS, mutating: true });
        });
      emit(output, () => failoverText(result), () => failoverJson(result));
      if (!result.success) {
        const message = `failover did not complete: ${oneLine(result.message)}`;
        throw new CliExit({ command: spec.command, code: "incomplete", message, exitCode: ExitCode.Failed });
      }
      return ExitCode.Ok;
    }),
};

export const haFailover: Subcommand = group(
  "ha failover",
  "planned failover (seed 000)",
  "Planned failover: move write authority from the leader to a successor (runbook 000, manual failover).",
  [trigger],
);

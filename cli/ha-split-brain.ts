import { RecoveryStrategy } from "../gen/autonomy/ha/v1/admin_pb.js";
import { adminClient, orchestratorUrl, rpcFailure } from "./admin-client.js";
import { ExitCode } from "./exit-codes.js";
import { group, type Subcommand } from "./ha-group.js";
import { CliExit, emit, mutationFlagHelp, mutationOptions, operatorAndReason, runLeaf, type LeafSpec } from "./ha-options.js";
import { oneLine } from "./output/format.js";
import { detectJson, detectText, recoverJson, recoverText } from "./output/split-brain.js";

/* `autonomy ha split-brain detect|recover` (seed 002). */

const READ_TIMEOUT_MS = 10_000;
/** Recovery resigns nodes and may wait for a stale session to be terminated. */
const RECOVER_TIMEOUT_MS = 60_000;

const detectOptions = { "exit-status": { type: "boolean" } } as const;

const detectSpec = {
  command: "ha split-brain detect",
  usage: "[--exit-status] [--orchestrator-url URL] [--output text|json]",
  summary:
    "Evaluate every split-brain criterion across all nodes at once: epoch divergence, holder mismatch, unclosed epochs, and more than one lock holder, Write-Ready node or writable primary.",
  options: detectOptions,
  flags: [["--exit-status", "exit 4 when a split-brain is detected, 0 when not (for scripts and monitors)"]],
  notes: [
    "Without --exit-status, exit 0 whether or not a split-brain is found; read split_brain_detected (JSON) or \"Split-Brain Detected:\" (text).",
  ],
} as const satisfies LeafSpec<typeof detectOptions>;

const detect: Subcommand = {
  name: "detect",
  summary: "evaluate every split-brain criterion now",
  run: (argv) =>
    runLeaf(detectSpec, argv, async ({ values, output, credentials }) => {
      const url = orchestratorUrl(detectSpec.command, values["orchestrator-url"], credentials);
      const result = await adminClient(url, READ_TIMEOUT_MS, credentials)
        .detectSplitBrain({})
        .catch((err: unknown) => {
          throw rpcFailure(err, { command: detectSpec.command, url, timeoutMs: READ_TIMEOUT_MS, mutating: false });
        });
      emit(output, () => detectText(result), () => detectJson(result));
      // Opt-in, so scripts that read the output keep their exit 0 either way.
      return values["exit-status"] && result.splitBrainDetected ? ExitCode.SplitBrainDetected : ExitCode.Ok;
    }),
};

/** The runbook's strategy names, in the order --help and errors list them. */
const STRATEGIES: readonly (readonly [string, RecoveryStrategy])[] = [
  ["promote-leader", RecoveryStrategy.PROMOTE_LEADER],
  ["manual-reconcile", RecoveryStrategy.MANUAL_RECONCILE],
];
const strategyNames = STRATEGIES.map(([n]) => n).join(", ");

const recoverOptions = { ...mutationOptions, strategy: { type: "string" }, force: { type: "boolean" }, target: { type: "string" } } as const;

const recoverSpec = {
  command: "ha split-brain recover",
  usage: "--strategy promote-leader|manual-reconcile --operator NAME --reason TEXT [--force] [--target NODE] [--orchestrator-url URL]",
  summary: "Bring the cluster back to one leader (promote-leader) or to none until a failover names one (manual-reconcile).",
  options: recoverOptions,
  flags: [
    ["--strategy NAME", "promote-leader: the stale node resigns, the correct one is confirmed; manual-reconcile: every node resigns and holds"],
    ...mutationFlagHelp,
    ["--force", "promote-leader: terminate the stale node's lock session if it does not resign"],
    ["--target NODE", "promote-leader: the correct leader (default: highest epoch with healthy replication)"],
  ],
  notes: ['After manual-reconcile nobody leads: inspect leader_epochs, then "autonomy ha failover trigger --target NODE".'],
} as const satisfies LeafSpec<typeof recoverOptions>;

function strategyOf(raw: string | undefined): RecoveryStrategy {
  const usage = (message: string) => new CliExit({ command: recoverSpec.command, code: "usage", message, exitCode: ExitCode.Usage });
  if (raw === undefined || raw === "") throw usage(`--strategy is required: one of ${strategyNames}`);
  const found = STRATEGIES.find(([n]) => n === raw);
  if (!found) throw usage(`unknown --strategy "${raw}"; valid strategies: ${strategyNames}`);
  return found[1];
}

const recover: Subcommand = {
  name: "recover",
  summary: "recover with promote-leader or manual-reconcile",
  run: (argv) =>
    runLeaf(recoverSpec, argv, async ({ values, output, env, credentials }) => {
      const strategy = strategyOf(values.strategy);
      const who = operatorAndReason(recoverSpec.command, values, env);
      const url = orchestratorUrl(recoverSpec.command, values["orchestrator-url"], credentials);
      const result = await adminClient(url, RECOVER_TIMEOUT_MS, credentials)
        .recoverSplitBrain({ ...who, strategy, force: values.force ?? false, targetNode: values.target ?? "" })
        .catch((err: unknown) => {
          throw rpcFailure(err, { command: recoverSpec.command, url, timeoutMs: RECOVER_TIMEOUT_MS, mutating: true });
        });
      // Print the name the operator typed when the server leaves it out.
      if (!result.strategy) result.strategy = values.strategy ?? "";
      emit(output, () => recoverText(result), () => recoverJson(result));
      if (!result.success) {
        const message = `recovery did not complete: ${oneLine(result.message)}`;
        throw new CliExit({ command: recoverSpec.command, code: "incomplete", message, exitCode: ExitCode.Failed });
      }
      return ExitCode.Ok;
    }),
};

export const haSplitBrain: Subcommand = group(
  "ha split-brain",
  "split-brain detection and recovery (seed 002)",
  "Split-brain detection and recovery (runbook 002): find nodes that both believe they hold write authority, and bring the cluster back to one leader.",
  [detect, recover],
);

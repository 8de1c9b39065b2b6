import { adminClient, orchestratorUrl, rpcFailure } from "./admin-client.js";
import { ExitCode } from "./exit-codes.js";
import type { Subcommand } from "./ha-group.js";
import { emit, mutationFlagHelp, mutationOptions, operatorAndReason, runLeaf, type LeafSpec } from "./ha-options.js";
import { maintenanceJson, maintenanceText } from "./output/maintenance.js";

/*
 * `autonomy ha pause|resume` (like `patronictl pause`): switch off every
 * automatic action (automatic failover, automatic split-brain recovery) for
 * maintenance, and back on. Operator-driven commands keep working.
 */

const TIMEOUT_MS = 10_000;

function maintenance(paused: boolean): Subcommand {
  const name = paused ? "pause" : "resume";
  const spec = {
    command: `ha ${name}`,
    usage: "--operator NAME --reason TEXT [--orchestrator-url URL] [--output text|json]",
    summary: paused
      ? "Pause every automatic action (automatic failover and split-brain recovery) until resumed; leadership stays as it is."
      : "Resume automatic actions after a pause.",
    options: mutationOptions,
    flags: mutationFlagHelp,
  } as const satisfies LeafSpec<typeof mutationOptions>;
  return {
    name,
    summary: paused ? "pause automatic failover and recovery (maintenance mode)" : "resume automatic actions",
    run: (argv) =>
      runLeaf(spec, argv, async ({ values, output, env, credentials }) => {
        const who = operatorAndReason(spec.command, values, env);
        const url = orchestratorUrl(spec.command, values["orchestrator-url"], credentials);
        const result = await adminClient(url, TIMEOUT_MS, credentials)
          .setMaintenance({ ...who, paused })
          .catch((err: unknown) => {
            throw rpcFailure(err, { command: spec.command, url, timeoutMs: TIMEOUT_MS, mutating: true });
          });
        emit(output, () => maintenanceText(result), () => maintenanceJson(result));
        return ExitCode.Ok;
      }),
  };
}

export const haPause: Subcommand = maintenance(true);
export const haResume: Subcommand = maintenance(false);

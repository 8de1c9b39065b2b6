import { intFlag } from "./args.js";
import { adminClient, orchestratorUrl, rpcFailure } from "./admin-client.js";
import { ExitCode } from "./exit-codes.js";
import type { Subcommand } from "./ha-group.js";
import { emit, runLeaf, type LeafSpec } from "./ha-options.js";
import { historyJson, historyText } from "./output/history.js";

/* `autonomy ha history`: every epoch, who held it, how it ended, and who asked why. */

const TIMEOUT_MS = 10_000;

const options = { limit: { type: "string" } } as const;

const spec = {
  command: "ha history",
  usage: "[--limit N] [--orchestrator-url URL] [--output text|json]",
  summary: "List the epochs, newest first: holder, acquired, resigned, end reason, and the operator and reason of the action that ended or began each.",
  options,
  flags: [["--limit N", "at most N newest epochs (default 20)"]],
} as const satisfies LeafSpec<typeof options>;

export const haHistory: Subcommand = {
  name: "history",
  summary: "the epochs: holder, acquired, resigned, end reason, who and why",
  run: (argv) =>
    runLeaf(spec, argv, async ({ values, output, credentials }) => {
      const limit = intFlag(spec.command, "limit", values.limit, 20, 1);
      const url = orchestratorUrl(spec.command, values["orchestrator-url"], credentials);
      const { epochs } = await adminClient(url, TIMEOUT_MS, credentials)
        .getHistory({ limit })
        .catch((err: unknown) => {
          throw rpcFailure(err, { command: spec.command, url, timeoutMs: TIMEOUT_MS, mutating: false });
        });
      emit(output, () => historyText(epochs), () => historyJson(epochs));
      return ExitCode.Ok;
    }),
};

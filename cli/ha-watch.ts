import { leaderClient, orchestratorUrl, rpcFailure } from "./admin-client.js";
import { ExitCode } from "./exit-codes.js";
import type { Subcommand } from "./ha-group.js";
import { CliExit, runLeaf, type LeafSpec } from "./ha-options.js";
import { jsonLine } from "./output/format.js";
import { watchJson, watchText } from "./output/watch.js";

/*
 * `autonomy ha watch`: follows LeaderService.WatchLeader and prints each
 * event as it arrives, one line each (JSON lines with --output json), until
 * Ctrl-C, which ends it cleanly with exit 0.
 */

const spec = {
  command: "ha watch",
  usage: "[--orchestrator-url URL] [--output text|json]",
  summary:
    "Follow the leader stream: the current leader first, then every change (leader changed or lost, Write-Ready changed, split-brain detected or resolved). Each line: revision, time, kind, holder, epoch, write-ready, message. Ctrl-C stops.",
  options: {},
  flags: [],
  notes: ["With --output json, one JSON object per line: revision, at, kind, holder_id, epoch, write_ready, acquired_at, message."],
} as const satisfies LeafSpec<Record<string, never>>;

export const haWatch: Subcommand = {
  name: "watch",
  summary: "follow leadership changes as they happen",
  run: (argv) =>
    runLeaf(spec, argv, async ({ values, output, credentials }) => {
      const url = orchestratorUrl(spec.command, values["orchestrator-url"], credentials);
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      // A closed pipe (`| head`) is the reader saying it has seen enough.
      const onStdoutError = (err: NodeJS.ErrnoException) => {
        if (err.code === "EPIPE") stop.abort();
      };
      process.once("SIGINT", onSignal);
      process.once("SIGTERM", onSignal);
      process.stdout.on("error", onStdoutError);
      try {
        let last: bigint | undefined;
        for await (const event of leaderClient(url, credentials).watchLeader({}, { signal: stop.signal })) {
          // The server's revisions rise by one; a gap means we missed events, and only the next snapshot is the full truth.
          if (last !== undefined && event.revision > last + 1n) {
            process.stderr.write(`autonomy ${spec.command}: missed events ${last + 1n}..${event.revision - 1n}\n`);
          }
          last = event.revision;
          process.stdout.write(`${output === "json" ? jsonLine(watchJson(event)) : watchText(event)}\n`);
        }
        if (stop.signal.aborted) return ExitCode.Ok;
        throw new CliExit(`autonomy ${spec.command}: the orchestrator at ${url} closed the leader stream; run the command again to resume`, ExitCode.Failed);
      } catch (err) {
        if (stop.signal.aborted) return ExitCode.Ok;
        if (err instanceof CliExit) throw err;
        throw rpcFailure(err, { command: spec.command, url, timeoutMs: 0, mutating: false });
      } finally {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
        process.stdout.off("error", onStdoutError);
      }
    }),
};

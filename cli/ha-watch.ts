import { leaderClient, orchestratorUrl, rpcFailure } from "./admin-client.js";
import { ExitCode } from "./exit-codes.js";
import { followStream, StreamClosedError } from "./follow-stream.js";
import type { Subcommand } from "./ha-group.js";
import { CliExit, runLeaf, type LeafSpec } from "./ha-options.js";
import { isoSeconds, jsonLine } from "./output/format.js";
import { watchJson, watchText } from "./output/watch.js";

/*
 * `autonomy ha watch`: follows LeaderService.WatchLeader and prints each
 * event as it arrives, one line each (JSON lines with --output json), until
 * Ctrl-C, which ends it cleanly with exit 0. When the stream breaks (the
 * coordinator restarted) it says so on stderr, reconnects with backoff and
 * carries on from the fresh snapshot.
 */

const spec = {
  command: "ha watch",
  usage: "[--orchestrator-url URL] [--output text|json]",
  summary:
    "Follow the leader stream: the current leader first, then every change (leader changed or lost, Write-Ready changed, split-brain detected or resolved). Each line: revision, time, kind, holder, epoch, write-ready, message. Ctrl-C stops.",
  options: {},
  flags: [],
  notes: [
    "With --output json, one JSON object per line: revision, at, kind, holder_id, epoch, write_ready, acquired_at, message.",
    "When the stream breaks, a line on stderr says so; the command reconnects with backoff, says on stderr when it resumed, and prints the",
    "server's fresh snapshot. The stream has no resume point, so changes while it was away may be missed; the snapshot is the truth.",
  ],
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
      const note = (line: string) => process.stderr.write(`autonomy ${spec.command}: ${line}\n`);
      const client = leaderClient(url, credentials);
      let last: bigint | undefined;
      try {
        await followStream({
          open: (signal) => client.watchLeader({}, { signal }),
          signal: stop.signal,
          onLost: (reason, at) => note(`lost the leader stream from ${url} at ${isoSeconds(at)} (${reason}); reconnecting`),
          onResumed: ({ at, attempts, downMs }) => {
            note(
              `resumed the leader stream at ${isoSeconds(at)} after ${attempts} attempt(s), ${(downMs / 1000).toFixed(1)}s without it; ` +
                "changes in between may have been missed: the snapshot that follows is the current state",
            );
            // A restarted server numbers its events afresh; the snapshot starts a new count.
            last = undefined;
          },
          onEvent: (event) => {
            // The server's revisions rise by one; a gap means we missed events, and only the next snapshot is the full truth.
            if (last !== undefined && event.revision > last + 1n) note(`missed events ${last + 1n}..${event.revision - 1n}`);
            last = event.revision;
            process.stdout.write(`${output === "json" ? jsonLine(watchJson(event)) : watchText(event)}\n`);
          },
        });
        return ExitCode.Ok;
      } catch (err) {
        if (stop.signal.aborted) return ExitCode.Ok;
        if (err instanceof StreamClosedError) {
          const message = `the orchestrator at ${url} closed the leader stream before sending anything`;
          throw new CliExit({ command: spec.command, code: "failed", message, exitCode: ExitCode.Failed });
        }
        throw rpcFailure(err, { command: spec.command, url, timeoutMs: 0, mutating: false });
      } finally {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
        process.stdout.off("error", onStdoutError);
      }
    }),
};

import { describeError, ErrorCode, HaError } from "../core/errors.js";
import { closest } from "../core/did-you-mean.js";
import { ExitCode, UsageError } from "./exit-codes.js";
import { commands, helpText } from "./commands.js";
import { CliExit, setErrorFormat, wantsJson, writeFailure } from "./failure.js";
import { oneLine } from "./output/format.js";
import { survivePingOnDestroyedSession } from "../rpc/keepalive-guard.js";

/**
 * `autonomy <command> [subcommand] [flags]`. Each command prints its own
 * `--help`; errors are one line on stderr (one JSON object with --output json)
 * with the exit codes of exit-codes.ts.
 */
async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(helpText());
    return name === undefined ? ExitCode.Usage : ExitCode.Ok;
  }
  if (name === "--version" || name === "version") {
    process.stdout.write(`autonomy ${(await import("../core/version.js")).VERSION}\n`);
    return ExitCode.Ok;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    const hint = closest(name, commands.map((c) => c.name));
    return writeFailure({
      command: "",
      code: "usage",
      message: `unknown command "${oneLine(name)}"${hint ? ` (did you mean "${hint}"?)` : ""}; run "autonomy --help" for the list`,
      exitCode: ExitCode.Usage,
    });
  }
  return command.run(rest);
}

setErrorFormat(wantsJson(process.argv.slice(2)) ? "json" : "text");
survivePingOnDestroyedSession();

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof CliExit) {
      process.exitCode = writeFailure(err.failure);
      return;
    }
    if (err instanceof UsageError) {
      process.exitCode = writeFailure({
        command: err.command,
        code: "usage",
        message: err.message,
        exitCode: ExitCode.Usage,
        hint: `Run "autonomy ${err.command} --help" for usage.`,
      });
      return;
    }
    if (err instanceof HaError && err.code === ErrorCode.InvalidArgument) {
      process.exitCode = writeFailure({ command: "", code: "usage", message: err.message, exitCode: ExitCode.Usage });
      return;
    }
    process.exitCode = writeFailure({ command: "", code: "failed", message: describeError(err), exitCode: ExitCode.Failed });
  },
);

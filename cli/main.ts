import { describeError, ErrorCode, HaError } from "../core/errors.js";
import { ExitCode, UsageError } from "./exit-codes.js";
import { commands, helpText } from "./commands.js";

/**
 * `autonomy <command> [subcommand] [flags]`. Each command prints its own
 * `--help`; errors are one line on stderr with the exit codes of exit-codes.ts.
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
    process.stderr.write(`autonomy: unknown command "${name}"; run "autonomy --help" for the list\n`);
    return ExitCode.Usage;
  }
  return command.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`autonomy ${err.command}: ${err.message}\nRun "autonomy ${err.command} --help" for usage.\n`);
      process.exitCode = ExitCode.Usage;
      return;
    }
    if (err instanceof HaError && err.code === ErrorCode.InvalidArgument) {
      process.stderr.write(`autonomy: ${err.message}\n`);
      process.exitCode = ExitCode.Usage;
      return;
    }
    process.stderr.write(`autonomy: ${describeError(err)}\n`);
    process.exitCode = ExitCode.Failed;
  },
);

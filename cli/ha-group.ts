import { closest } from "../core/did-you-mean.js";
import { ExitCode } from "./exit-codes.js";
import { writeFailure } from "./failure.js";
import { oneLine, textOf } from "./output/format.js";

/*
 * Command groups (`autonomy ha`, `autonomy ha failover`, `autonomy audit`):
 * the first word picks a subcommand; --help lists them; anything else is a
 * usage error (exit 2) that says where to find the list, and which command
 * was probably meant when one is close.
 */

export interface Subcommand {
  readonly name: string;
  readonly summary: string;
  run(argv: string[]): Promise<number>;
}

/** `summary` is the one-line entry in the parent's list; `description` heads this group's --help. */
export function group(path: string, summary: string, description: string, children: readonly Subcommand[]): Subcommand {
  const name = path.split(" ").at(-1) ?? path;
  const help = () => {
    const width = Math.max(...children.map((c) => c.name.length));
    return textOf([
      `Usage: autonomy ${path} <command> [flags]`,
      "",
      description,
      "",
      "Commands:",
      ...children.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
      "",
      `Run "autonomy ${path} <command> --help" for a command's flags.`,
    ]);
  };
  return {
    name,
    summary,
    async run(argv) {
      const [first, ...rest] = argv;
      if (first === "--help" || first === "-h" || first === "help") {
        process.stdout.write(help());
        return ExitCode.Ok;
      }
      if (first === undefined) {
        const message = `missing command; one of ${children.map((c) => c.name).join(", ")}`;
        return writeFailure({ command: path, code: "usage", message, exitCode: ExitCode.Usage });
      }
      const child = children.find((c) => c.name === first);
      if (!child) {
        const hint = closest(first, children.map((c) => c.name));
        const message = `unknown command "${oneLine(first)}"${hint ? ` (did you mean "${hint}"?)` : ""}; run "autonomy ${path} --help" for the list`;
        return writeFailure({ command: path, code: "usage", message, exitCode: ExitCode.Usage });
      }
      return child.run(rest);
    },
  };
}

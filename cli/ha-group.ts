import { ExitCode } from "./exit-codes.js";
import { textOf } from "./output/format.js";

/*
 * Command groups (`autonomy ha`, `autonomy ha failover`, `autonomy audit`):
 * the first word picks a subcommand; --help lists them; anything else is a
 * usage error (exit 2) that says where to find the list.
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
        process.stderr.write(`autonomy ${path}: missing command; one of ${children.map((c) => c.name).join(", ")}\n`);
        return ExitCode.Usage;
      }
      const child = children.find((c) => c.name === first);
      if (!child) {
        process.stderr.write(`autonomy ${path}: unknown command "${first}"; run "autonomy ${path} --help" for the list\n`);
        return ExitCode.Usage;
      }
      return child.run(rest);
    },
  };
}

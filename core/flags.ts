import { parseArgs, type ParseArgsConfig } from "node:util";
import { UsageError } from "./usage-error.js";

export type OptionSpec = NonNullable<ParseArgsConfig["options"]>;

/**
 * Strict flag parsing: unknown flags, missing values and stray positionals are
 * usage errors that name the command, so the message can say where to look.
 */
export function parseFlags<T extends OptionSpec>(
  command: string,
  argv: readonly string[],
  options: T,
  allowPositionals = false,
) {
  try {
    return parseArgs({ args: [...argv], options, strict: true, allowPositionals });
  } catch (err) {
    const message = err instanceof Error ? err.message.replace(/\. To specify a positional argument.*$/s, "") : String(err);
    throw new UsageError(message, command);
  }
}

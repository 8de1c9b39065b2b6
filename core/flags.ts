import { parseArgs, type ParseArgsConfig } from "node:util";
import { closest } from "./did-you-mean.js";
import { UsageError } from "./usage-error.js";

export type OptionSpec = NonNullable<ParseArgsConfig["options"]>;

/**
 * Strict flag parsing: unknown flags, missing values and stray positionals are
 * usage errors that name the command, so the message can say where to look.
 * An unknown flag close to a known one says which one was probably meant.
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
    throw new UsageError(`${message}${unknownFlagHint(err, options)}`, command);
  }
}

/** ' (did you mean --orchestrator-url?)' for parseArgs' "Unknown option '--orchestrator-ulr'", else "". */
function unknownFlagHint(err: unknown, options: OptionSpec): string {
  if ((err as { code?: unknown }).code !== "ERR_PARSE_ARGS_UNKNOWN_OPTION") return "";
  const typed = /Unknown option '(--?[^'=]+)/.exec((err as Error).message)?.[1];
  if (!typed?.startsWith("--")) return "";
  const known = Object.keys(options).map((name) => `--${name}`);
  const hint = closest(typed, known);
  return hint ? ` (did you mean ${hint}?)` : "";
}

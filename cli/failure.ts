import { jsonLine } from "./output/format.js";

/*
 * How a command ends when it fails: one Failure, written once to stderr,
 * either as the one line people read (the default) or, when the command ran
 * with --output json, as one JSON object scripts can parse:
 *   {"error":{"code":"refused","exit_code":3,"message":"…","command":"ha failover trigger"}}
 */

/** What kind of failure; stable names for scripts, one per way a command can end badly. */
export type FailureCode =
  | "usage" // bad command, flag or value; nothing was sent
  | "invalid_request" // the server rejected an argument (unknown node, …)
  | "refused" // a precondition said no (the runbooks' 409); nothing changed
  | "unreachable" // no connection to the orchestrator
  | "timeout" // no answer in time
  | "not_served" // the URL does not serve this call
  | "not_found"
  | "not_allowed" // authentication or authorisation
  | "unavailable" // the server answered that it cannot serve now
  | "incomplete" // a failover or recovery that did not complete
  | "failed"; // anything else

export interface Failure {
  /** The command path without "autonomy", e.g. "ha failover trigger"; "" for the top level. */
  readonly command: string;
  readonly code: FailureCode;
  /** What went wrong, on one line, without the "autonomy <command>: " prefix. */
  readonly message: string;
  readonly exitCode: number;
  /** A text-mode second line, e.g. where to find the usage. */
  readonly hint?: string;
}

/** Words the text line puts before the message, for the codes whose message is the server's own. */
const TEXT_PREFIX: Partial<Record<FailureCode, string>> = {
  refused: "refused: ",
  invalid_request: "invalid request: ",
  not_found: "not found: ",
  not_allowed: "not allowed: ",
  unavailable: "unavailable: ",
};

/** The one line text mode prints: "autonomy ha status: refused: …". */
export function failureLine(f: Failure): string {
  // The runbooks' 409 texts ("precondition not met: …") already say it was refused.
  const prefix = f.code === "refused" && f.message.startsWith("precondition not met: ") ? "" : (TEXT_PREFIX[f.code] ?? "");
  return `autonomy${f.command ? ` ${f.command}` : ""}: ${prefix}${f.message}`;
}

export function failureJson(f: Failure): { error: { code: FailureCode; exit_code: number; message: string; command: string } } {
  return { error: { code: f.code, exit_code: f.exitCode, message: f.message, command: f.command } };
}

/** Ends a command with a Failure; runLeaf and main write it and exit with its code. */
export class CliExit extends Error {
  override readonly name = "CliExit";
  constructor(readonly failure: Failure) {
    super(failureLine(failure));
  }

  get line(): string {
    return this.message;
  }

  get code(): number {
    return this.failure.exitCode;
  }
}

export type ErrorFormat = "text" | "json";

let format: ErrorFormat = "text";

/** Set once by main from the command line, before anything can fail. */
export function setErrorFormat(f: ErrorFormat): void {
  format = f;
}

/** Writes the failure to stderr in the format the command line asked for; returns its exit code. */
export function writeFailure(f: Failure, stderr: { write(s: string): unknown } = process.stderr): number {
  stderr.write(format === "json" ? `${jsonLine(failureJson(f))}\n` : `${failureLine(f)}\n${f.hint ? `${f.hint}\n` : ""}`);
  return f.exitCode;
}

/**
 * Whether the command line asks for JSON output (`--output json`, `-o json`,
 * `--output=json`, `-ojson`), looked at before flags are parsed so that even
 * an unknown flag is reported as JSON. Stops at `--`.
 */
export function wantsJson(argv: readonly string[]): boolean {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") return false;
    if ((a === "--output" || a === "-o") && argv[i + 1] === "json") return true;
    if (a === "--output=json" || a === "-ojson" || a === "-o=json") return true;
  }
  return false;
}

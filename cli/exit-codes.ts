/** Exit codes every `autonomy` command keeps (documented in docs/configuration.md). */
export const ExitCode = {
  Ok: 0,
  Failed: 1,
  Usage: 2,
  /** A precondition refused the request (HTTP 409 in the runbooks). */
  Refused: 3,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export { UsageError } from "../core/usage-error.js";

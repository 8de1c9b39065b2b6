/** Exit codes every `autonomy` command keeps (documented in docs/configuration.md). */
export const ExitCode = {
  Ok: 0,
  Failed: 1,
  Usage: 2,
  /** A precondition refused the request (HTTP 409 in the runbooks). */
  Refused: 3,
  /** `ha split-brain detect --exit-status` found a split-brain (without the flag it exits 0). */
  SplitBrainDetected: 4,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export { UsageError } from "../core/usage-error.js";

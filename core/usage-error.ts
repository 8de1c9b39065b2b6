/**
 * Thrown for bad flags, arguments or settings; the CLI prints it as one line
 * plus a hint and exits 2. It lives in core because settings are resolved
 * here; `cli/exit-codes.ts` re-exports it with the exit codes.
 */
export class UsageError extends Error {
  override readonly name = "UsageError";
  constructor(
    message: string,
    readonly command: string,
  ) {
    super(message);
  }
}

import { describeError, HaError, ErrorCode } from "../core/errors.js";
import type { Logger } from "../core/log.js";
import { ExitCode } from "./exit-codes.js";

/**
 * Runs a long-lived process (agent, coordinator) until SIGINT or SIGTERM,
 * then stops it in order. A start-up failure is one line on stderr and a
 * non-zero exit, never a stack trace.
 */
export async function runProcess(log: Logger, start: () => Promise<{ stop(): Promise<void> }>): Promise<number> {
  let running: { stop(): Promise<void> };
  try {
    running = await start();
  } catch (err) {
    const usage = err instanceof HaError && err.code === ErrorCode.InvalidArgument;
    process.stderr.write(`autonomy: ${describeError(err)}\n`);
    return usage ? ExitCode.Usage : ExitCode.Failed;
  }
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once("SIGINT", () => resolve("SIGINT"));
    process.once("SIGTERM", () => resolve("SIGTERM"));
  });
  log.info({ signal }, "stopping");
  // A second signal while stopping means "now".
  const force = () => process.exit(ExitCode.Failed);
  process.once("SIGINT", force);
  process.once("SIGTERM", force);
  await running.stop();
  return ExitCode.Ok;
}

/**
 * Re-reads the token file on SIGHUP, as daemons do. A file that does not
 * parse leaves the tokens in force and says why, so a typo never locks
 * every operator out.
 */
export function reloadTokensOnHangup(tokens: { file: string; reload(): number } | undefined, log: Logger): void {
  if (!tokens) return;
  process.on("SIGHUP", () => {
    try {
      const count = tokens.reload();
      log.info({ file: tokens.file, tokens: count }, "token file reloaded");
    } catch (err) {
      log.error({ file: tokens.file, err: describeError(err) }, "token file not reloaded; the previous tokens stay in force");
    }
  });
}

import { pino, type Logger } from "pino";
import { build as prettyStream } from "pino-pretty";

export type { Logger };

/**
 * JSON lines for machines; on a terminal, pino-pretty's lines for people
 * (time, level, name, message, the fields; an `err` on a line of its own, so
 * it stands out). Nothing else is written to a process's stdout, so a log
 * collector sees only JSON.
 */
export function createLogger(options: { name: string; level?: string; pretty?: boolean; destination?: NodeJS.WritableStream }): Logger {
  const level = options.level ?? process.env.AUTONOMY_LOG_LEVEL ?? "info";
  const out = options.destination ?? process.stdout;
  const pretty = options.pretty ?? (out === process.stdout && process.stdout.isTTY === true);
  if (!pretty) return pino({ name: options.name, level, base: { name: options.name } }, out as pino.DestinationStream);
  return pino(
    { name: options.name, level },
    // In-process and synchronous: no worker thread, and nothing is lost when the process exits.
    prettyStream({
      destination: out,
      sync: true,
      singleLine: true,
      colorize: (out as { isTTY?: boolean }).isTTY === true,
      translateTime: "SYS:HH:MM:ss.l",
      ignore: "pid,hostname",
    }),
  );
}

/** A logger that discards everything, for tests of pure logic. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}

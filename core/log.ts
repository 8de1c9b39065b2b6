import { pino, type Logger } from "pino";

export type { Logger };

/**
 * JSON lines on stdout for machines; pretty single lines on a terminal for
 * people. pino-pretty is not a dependency, so "pretty" is our own small
 * formatter: level, time, message, then the fields as key=value.
 */
export function createLogger(options: { name: string; level?: string; pretty?: boolean; destination?: NodeJS.WritableStream }): Logger {
  const level = options.level ?? process.env.AUTONOMY_LOG_LEVEL ?? "info";
  const out = options.destination ?? process.stdout;
  const pretty = options.pretty ?? (out === process.stdout && process.stdout.isTTY === true);
  if (!pretty) return pino({ name: options.name, level, base: { name: options.name } }, out as pino.DestinationStream);
  return pino({ name: options.name, level }, { write: (line: string) => out.write(formatPretty(line)) });
}

const levelNames: Record<number, string> = { 10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL" };
const omitted = new Set(["level", "time", "msg", "pid", "hostname", "name"]);

export function formatPretty(line: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const time = new Date(Number(rec.time)).toISOString().slice(11, 23);
  const lvl = (levelNames[Number(rec.level)] ?? String(rec.level)).padEnd(5);
  const fields = Object.entries(rec)
    .filter(([k]) => !omitted.has(k))
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" ");
  return `${time} ${lvl} [${String(rec.name ?? "")}] ${String(rec.msg ?? "")}${fields ? "  " + fields : ""}\n`;
}

/** A logger that discards everything, for tests of pure logic. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}

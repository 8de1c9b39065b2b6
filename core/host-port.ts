import { invalidArgument } from "./errors.js";

/** HOST:PORT, e.g. 127.0.0.1:8888 or [::1]:8888. */
export function parseHostPort(raw: string, what: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(raw);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw invalidArgument(`${what} "${raw}" must be HOST:PORT, e.g. 127.0.0.1:8888`);
  return { host: m[1]!.replace(/^\[|\]$/g, ""), port };
}

/** The address a serving process listens on (agent and coordinator `--listen`). */
export function parseListen(raw: string, what = "--listen"): { host: string; port: number } {
  return parseHostPort(raw, what);
}

/**
 * connect-node's HTTP/2 keepalive can ping a session that was destroyed a
 * moment before (a coordinator killed, a connection reset): Node throws
 * ERR_HTTP2_INVALID_SESSION synchronously from a timer, and the process would
 * exit on it (connectrpc/connect-es#1795, fix pending in #1797). An agent
 * must not die because the coordinator did, so an autonomy process survives
 * exactly that exception, logged; every other uncaught exception still ends
 * the process as Node would (message on stderr, exit code 1).
 */
export function isKeepalivePingRace(err: unknown): boolean {
  const e = err as { code?: unknown; stack?: unknown } | undefined;
  return e?.code === "ERR_HTTP2_INVALID_SESSION" && typeof e.stack === "string" && /\b(commonPing|onPingInterval)\b/.test(e.stack);
}

let installed = false;

export function survivePingOnDestroyedSession(warn: (line: string) => void = (line) => process.stderr.write(`${line}\n`)): void {
  if (installed) return;
  installed = true;
  process.on("uncaughtException", (err) => {
    if (isKeepalivePingRace(err)) {
      warn("autonomy: ignored a keepalive ping on an HTTP/2 session already closed (connect-es#1795); the connection is being re-established");
      return;
    }
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}

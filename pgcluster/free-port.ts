// Asks the kernel for an unused TCP port. There is an unavoidable window
// between closing our probe socket and the server binding the port; callers
// bind promptly and PgServer.start() reports a clear error if it was taken.

import net from "node:net";

/** Listen on port 0 of `host`, read the port the kernel chose, close, return it. */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once("error", reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close((err) => {
        if (err) reject(err);
        else if (port === 0) reject(new Error(`could not determine a free port on ${host}`));
        else resolve(port);
      });
    });
  });
}

/** True if nothing listens on host:port right now (we can bind it ourselves). */
export function isPortFree(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once("error", () => resolve(false));
    server.listen({ host, port, exclusive: true }, () => {
      server.close(() => resolve(true));
    });
  });
}

// Test fixture: starts a one-server cluster, prints its facts as one JSON
// line, then idles until killed (cluster.spec.ts SIGKILLs it to prove the
// postmaster does not outlive its host) or, with argument "exit", exits at
// once without close() (to prove the exit handler cleans up).

import { startPgCluster } from "../index.js";

const cluster = await startPgCluster({ standbys: 0 });
process.stdout.write(
  `${JSON.stringify({ baseDir: cluster.baseDir, pid: cluster.primary.pid(), port: cluster.primary.port })}\n`,
);
if (process.argv[2] === "exit") process.exit(0);
// Keep the event loop alive (servers are unref'd on purpose).
setInterval(() => {}, 60_000);

/*
 * A leader-only worker: the process next to each agent runs this, and the
 * loop below runs on exactly one node at a time, the one whose agent holds
 * write authority. Each job is written with fencedTransaction, so a write
 * carrying an epoch that has ended is refused by the database even if this
 * process has not heard the news yet.
 *
 *   AUTONOMY_AGENT_URL=http://127.0.0.1:8881 DATABASE_URL=postgres://… node --import tsx examples/leader-worker.ts
 *
 * TLS and tokens come from the CLI's variables (AUTONOMY_TLS_CERT,
 * AUTONOMY_TLS_KEY, AUTONOMY_TLS_CA, AUTONOMY_TOKEN). In your own project,
 * import from "autonomy-ha/client".
 */
import pg from "pg";
import { credentialsFromEnv, fencedTransaction, StaleEpochError, whileLeader } from "../client/index.js";

const agentUrl = process.env.AUTONOMY_AGENT_URL;
const databaseUrl = process.env.DATABASE_URL;
if (!agentUrl || !databaseUrl) {
  process.stderr.write("leader-worker: set AUTONOMY_AGENT_URL (this node's agent, e.g. http://127.0.0.1:8881) and DATABASE_URL (the primary)\n");
  process.exit(2);
}
const leaseMs = process.env.AUTONOMY_LEASE_MS ? Number(process.env.AUTONOMY_LEASE_MS) : undefined;

const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
pool.on("error", () => undefined); // a dropped idle connection is replaced on next use
// Every node runs this at start; CREATE TABLE IF NOT EXISTS is not safe against a
// concurrent twin (both can pass the check), so the creators take turns on a lock.
await pool.query(`BEGIN;
  SELECT pg_advisory_xact_lock(hashtext('example_jobs'));
  CREATE TABLE IF NOT EXISTS example_jobs (id bigserial PRIMARY KEY, epoch bigint NOT NULL, node text NOT NULL, done_at timestamptz NOT NULL DEFAULT now());
  COMMIT`);

const stop = new AbortController();
process.once("SIGINT", () => stop.abort());
process.once("SIGTERM", () => stop.abort());

await whileLeader(
  { agentUrl, signal: stop.signal, credentials: credentialsFromEnv(), name: "example worker", ...(leaseMs ? { leaseMs } : {}) },
  async ({ nodeId, epoch, signal }) => {
    // Runs only while this node leads; `signal` aborts the moment it stops leading.
    while (!signal.aborted) {
      try {
        await fencedTransaction(pool, epoch, (client) => client.query("INSERT INTO example_jobs (epoch, node) VALUES ($1, $2)", [epoch, nodeId]));
        process.stdout.write(`job done at epoch ${epoch}\n`);
      } catch (err) {
        // The fence at work: this epoch is over. Stop; whileLeader starts the next term's loop if this node leads again.
        if (err instanceof StaleEpochError) return;
        throw err;
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  },
);
await pool.end();

/*
 * A service that follows the leader: it prints one JSON line per event of
 * the leader stream, read from any of several coordinators and agents. The
 * library reconnects with backoff, moves to the next URL when one fails,
 * gives each epoch once and in order, and says when it is disconnected or
 * behind rather than going quiet.
 *
 *   AUTONOMY_LEADER_URLS=http://127.0.0.1:8890,http://127.0.0.1:8881 node --import tsx examples/leader-follower.ts
 *
 * In your own project, import from "autonomy-ha/client".
 */
import { credentialsFromEnv, followLeader } from "../client/index.js";

const urls = (process.env.AUTONOMY_LEADER_URLS ?? "").split(",").map((u) => u.trim()).filter(Boolean);
if (urls.length === 0) {
  process.stderr.write("leader-follower: set AUTONOMY_LEADER_URLS to coordinator and agent URLs, comma-separated\n");
  process.exit(2);
}

const stop = new AbortController();
process.once("SIGINT", () => stop.abort());
process.once("SIGTERM", () => stop.abort());

for await (const event of followLeader({ urls, signal: stop.signal, credentials: credentialsFromEnv() })) {
  if (event.type === "leader") {
    const { holderId, epoch, writeReady } = event.leader;
    process.stdout.write(`${JSON.stringify({ type: "leader", holder_id: holderId, epoch, write_ready: writeReady, cause: event.cause, url: event.url })}\n`);
  } else {
    process.stdout.write(`${JSON.stringify(event)}\n`);
  }
}

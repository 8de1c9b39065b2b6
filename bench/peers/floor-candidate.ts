/*
 * The floor: the least a correct advisory-lock election must do. One session
 * blocks in pg_advisory_lock() (PostgreSQL grants it to the next waiter the
 * moment the holder's session ends), then opens its term in one statement
 * (one transaction) that raises the epoch its writes are fenced by. Nothing
 * else: no lease, no health, no coordinator. Its crash handover is the
 * physical floor for any design built on the same lock.
 *
 * Run by bench/peers/floor.ts as a child process; speaks CandidateOut over IPC.
 */
import pg from "pg";
import type { CandidateIn, CandidateOut } from "./candidate-process.js";
import { FLOOR_LOCK_KEY, FLOOR_TERM_TABLE } from "./floor-schema.js";

const node = process.env.CANDIDATE_NODE!;
const send = (m: CandidateOut) => process.send!(m);

async function main(): Promise<void> {
  const client = new pg.Client({ connectionString: process.env.FLOOR_DATABASE_URL, application_name: `floor-${node}` });
  // The session is the claim: losing it means another candidate may already lead.
  client.on("error", () => process.exit(1));
  await client.connect();

  const campaign = async () => {
    const granted = client.query("SELECT pg_advisory_lock($1)", [FLOOR_LOCK_KEY]);
    send({ kind: "campaigning" });
    await granted;
    const r = await client.query<{ epoch: string }>(`UPDATE ${FLOOR_TERM_TABLE} SET epoch = epoch + 1, holder = $1 WHERE id = 1 RETURNING epoch`, [node]);
    send({ kind: "elected", term: Number(r.rows[0]!.epoch) });
  };

  process.on("message", (m: CandidateIn) => {
    if (m.kind !== "resign") return;
    void (async () => {
      send({ kind: "resigning" });
      await client.query("SELECT pg_advisory_unlock($1)", [FLOOR_LOCK_KEY]);
      setTimeout(() => void campaign().catch(fail), m.rejoinAfterMs);
    })().catch(fail);
  });
  await campaign();
}

function fail(err: unknown): never {
  send({ kind: "error", message: String(err) });
  process.exit(1);
}

main().catch(fail);

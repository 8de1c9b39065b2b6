import pg from "pg";
import { ErrorCode, HaError, STALE_EPOCH_SQLSTATE, invalidArgument } from "../core/errors.js";

/**
 * assert_epoch() refused the transaction (SQLSTATE AH001): `epoch` is no
 * longer the current term, so whoever holds it no longer has write
 * authority. Nothing of the transaction was committed. Never retryable with
 * the same epoch: re-read the leader (followLeader / whileLeader).
 */
export class StaleEpochError extends HaError {
  /** The epoch the transaction asserted. */
  readonly epoch: number;
  /** The cluster's current epoch, when the database said (undefined when it did not, e.g. on a fenced server). */
  readonly currentEpoch: number | undefined;

  constructor(epoch: number, currentEpoch: number | undefined, message: string, cause: unknown) {
    super(ErrorCode.StaleEpoch, message, { cause, retryable: false });
    Object.defineProperty(this, "name", { value: "StaleEpochError" });
    this.epoch = epoch;
    this.currentEpoch = currentEpoch;
  }
}

/** What fencedTransaction can run on: a pool (a client is taken and given back) or one connected client not inside a transaction. */
export type Queryable = pg.Pool | pg.ClientBase;

export interface FencedTransactionOptions {
  /** The cluster id assert_epoch() checks (default "default", the agents' --cluster-id). */
  readonly clusterId?: string;
  /** The schema of assert_epoch() (the agents' --schema), when it is not on the search_path. */
  readonly schema?: string;
  /**
   * Run the whole transaction again after a serialization failure or
   * deadlock (SQLSTATE 40001, 40P01), at most this many times (default 0:
   * never). A stale epoch is never retried; neither is a lost connection,
   * since the COMMIT may have happened.
   */
  readonly retries?: number;
}

/**
 * BEGIN; SELECT assert_epoch(epoch); your statements; COMMIT — on one
 * connection, so the check and the writes are one transaction and a new term
 * cannot begin until it ends (docs/architecture.md, "The epoch fence"). Any
 * error rolls back; AH001 becomes StaleEpochError. The callback's statements
 * must go through the `client` it gets: anything written through another
 * connection is not fenced.
 */
export async function fencedTransaction<T>(
  db: Queryable,
  epoch: number,
  work: (client: pg.ClientBase) => Promise<T>,
  options: FencedTransactionOptions = {},
): Promise<T> {
  if (!Number.isSafeInteger(epoch) || epoch < 1) {
    throw invalidArgument(`fencedTransaction: epoch must be a positive integer (the term's epoch from whileLeader or followLeader), got ${String(epoch)}`);
  }
  if (typeof work !== "function") throw invalidArgument("fencedTransaction: the third argument must be the callback, async (client) => { … }");
  const retries = options.retries ?? 0;
  if (!Number.isInteger(retries) || retries < 0) throw invalidArgument(`fencedTransaction: retries must be a whole number of at least 0, got ${String(retries)}`);
  const fn = options.schema ? `${pg.escapeIdentifier(options.schema)}.assert_epoch` : "assert_epoch";
  for (let attempt = 0; ; attempt++) {
    try {
      return await once(db, epoch, work, fn, options.clusterId ?? "default");
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (attempt < retries && (code === "40001" || code === "40P01")) continue;
      throw err;
    }
  }
}

async function once<T>(db: Queryable, epoch: number, work: (client: pg.ClientBase) => Promise<T>, fn: string, clusterId: string): Promise<T> {
  const pooled = db instanceof pg.Pool;
  const client: pg.ClientBase = pooled ? await (db as pg.Pool).connect() : (db as pg.ClientBase);
  let broken: Error | undefined;
  // A pool listens only to its idle clients: a server that dies while this one
  // is checked out would emit an 'error' nobody hears, and end the process.
  const onError = (err: Error) => {
    broken ??= err;
  };
  if (pooled) client.on("error", onError);
  try {
    await client.query("BEGIN");
    try {
      await client.query(`SELECT ${fn}($1, $2)`, [epoch, clusterId]);
      const result = await work(client);
      await client.query("COMMIT");
      return result;
    } catch (err) {
      await client.query("ROLLBACK").catch((rollbackError: Error) => (broken = rollbackError));
      throw asStaleEpoch(err, epoch);
    }
  } finally {
    // A client whose ROLLBACK failed, or whose connection failed, is in an
    // unknown state: the pool must not hand it out again. It keeps our
    // listener, so a late 'error' from it still finds one.
    if (pooled) {
      if (!broken) client.off("error", onError);
      (client as pg.PoolClient).release(broken);
    }
  }
}

function asStaleEpoch(err: unknown, epoch: number): unknown {
  if ((err as { code?: unknown }).code !== STALE_EPOCH_SQLSTATE) return err;
  const message = (err as Error).message;
  const m = /current epoch of cluster \S+ is (\d+)/.exec(message);
  const hint = (err as { hint?: unknown }).hint;
  return new StaleEpochError(epoch, m ? Number(m[1]) : undefined, `${message}${typeof hint === "string" && hint ? ` (${hint})` : ""}`, err);
}


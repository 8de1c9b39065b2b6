import { createHash } from "node:crypto";
import type { Clock } from "../../core/clock.js";
import { ErrorCode, HaError, describeError, invalidArgument, toHaError } from "../../core/errors.js";
import type { Logger } from "../../core/log.js";
import type { SchemaName } from "../../db/identifiers.js";
import type { Queryable } from "../../db/side-connection.js";
import { isNotActive } from "./tier.js";

/** How long a finished request is remembered: a retry comes within seconds, an operator's re-run much later is a new request. */
const KEPT_FOR = "1 day";
const WAIT_POLL_MS = 100;

/** What a mutation handler is, for the ledger: run it, or replay its recorded answer. */
export interface LedgerCall<R> {
  /** The request's idempotency key (x-autonomy-idempotency-key); without one nothing is recorded. */
  readonly key: string | undefined;
  readonly method: string;
  readonly clusterId: string;
  /** The request's bytes: the same key with other bytes is a different request, and refused. */
  readonly request: Uint8Array;
  /** The leader's epoch now, kept so a coordinator finishing the request can tell whether its failover already happened. */
  readonly leaderEpoch: number;
  readonly run: (takeover: Takeover | undefined) => Promise<R>;
  readonly encode: (response: R) => Uint8Array;
  readonly decode: (bytes: Uint8Array) => R;
}

/** A request the coordinator of an earlier term took and did not finish (it died or stepped down). */
export interface Takeover {
  readonly previousTerm: number;
  /** The leader's epoch when the request was first taken. */
  readonly leaderEpoch: number;
}

interface Row {
  method: string;
  digest: string;
  term: string;
  leader_epoch: string;
  state: "running" | "done" | "failed";
  response: Buffer | null;
  error_code: string | null;
  error_message: string | null;
}

/**
 * Admin requests by idempotency key, in the lock database (migration 7): a
 * request is recorded as running before it acts and with its answer after,
 * so the same request retried (on this coordinator or on the one that took
 * over) returns the first answer and is never done twice. A request whose
 * coordinator died mid-way is finished by the next active one, which is told
 * so (Takeover) and can see whether the change already happened.
 */
export class RequestLedger {
  constructor(
    private readonly db: Queryable,
    private readonly schema: SchemaName,
    private readonly term: () => number,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  async handle<R>(call: LedgerCall<R>, signal?: AbortSignal): Promise<R> {
    if (call.key === undefined) return call.run(undefined);
    const key = checkKey(call.key);
    const digest = createHash("sha256").update(call.method).update("\0").update(call.request).digest("hex");
    const table = this.schema.q("coordinator_requests");
    for (;;) {
      const term = this.term();
      const taken = await this.db.query(
        `INSERT INTO ${table} (idempotency_key, method, digest, cluster_id, term, leader_epoch, state)
         VALUES ($1, $2, $3, $4, $5, $6, 'running') ON CONFLICT (idempotency_key) DO NOTHING`,
        [key, call.method, digest, call.clusterId, term, call.leaderEpoch],
      );
      if (taken.rowCount === 1) {
        void this.forgetOld();
        return this.runAndRecord(key, term, call, undefined);
      }
      const found = await this.db.query<Row>(`SELECT method, digest, term, leader_epoch, state, response, error_code, error_message FROM ${table} WHERE idempotency_key = $1`, [key]);
      const row = found.rows[0];
      if (!row) continue; // forgotten in between: take it afresh
      if (row.digest !== digest) {
        throw invalidArgument(`idempotency key ${key} was already used for another request (${row.method}); send a new key for a new request`);
      }
      if (row.state === "done") return call.decode(row.response ?? new Uint8Array());
      if (row.state === "failed") throw new HaError((row.error_code as ErrorCode | null) ?? ErrorCode.Internal, row.error_message ?? "failed");
      const previousTerm = Number(row.term);
      if (previousTerm < term) {
        // Its coordinator is gone: finish it here, once (the update is the claim).
        const claimed = await this.db.query(`UPDATE ${table} SET term = $2 WHERE idempotency_key = $1 AND state = 'running' AND term = $3`, [key, term, previousTerm]);
        if (claimed.rowCount !== 1) continue;
        this.log.warn({ key, method: call.method, previous_term: previousTerm }, `finishing ${call.method} that coordinator term ${previousTerm} took and did not finish`);
        return this.runAndRecord(key, term, call, { previousTerm, leaderEpoch: Number(row.leader_epoch) });
      }
      // The same request is running here already (a retry that raced the first): wait for its answer.
      await this.clock.sleep(WAIT_POLL_MS, signal);
    }
  }

  private async runAndRecord<R>(key: string, term: number, call: LedgerCall<R>, takeover: Takeover | undefined): Promise<R> {
    const table = this.schema.q("coordinator_requests");
    let response: R;
    try {
      response = await call.run(takeover);
    } catch (err) {
      const e = toHaError(err);
      // A coordinator that stopped being active mid-way leaves the request running for the next one.
      if (!isNotActive(e)) {
        await this.db
          .query(`UPDATE ${table} SET state = 'failed', error_code = $3, error_message = $4, finished_at = now() WHERE idempotency_key = $1 AND term = $2`, [key, term, e.code, e.message])
          .catch((dbErr: unknown) => this.log.warn({ key, err: describeError(dbErr) }, "recording a failed request failed; a retry will run it again"));
      }
      throw err;
    }
    await this.db
      .query(`UPDATE ${table} SET state = 'done', response = $3, finished_at = now() WHERE idempotency_key = $1 AND term = $2`, [key, term, Buffer.from(call.encode(response))])
      .catch((err: unknown) => this.log.warn({ key, err: describeError(err) }, "recording a request's answer failed; a retry will find it running"));
    return response;
  }

  private async forgetOld(): Promise<void> {
    await this.db.query(`DELETE FROM ${this.schema.q("coordinator_requests")} WHERE started_at < now() - interval '${KEPT_FOR}'`).catch(() => undefined);
  }
}

function checkKey(key: string): string {
  if (!/^[A-Za-z0-9._:-]{8,128}$/.test(key)) {
    throw invalidArgument(`x-autonomy-idempotency-key must be 8 to 128 letters, digits, '.', '_', ':' or '-' (a UUID fits); got ${JSON.stringify(key.slice(0, 40))}`);
  }
  return key;
}

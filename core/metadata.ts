/**
 * Identity travels in call metadata, never in message bodies, so that token
 * or mTLS authentication can replace these headers without a wire change.
 */
export const NODE_ID_HEADER = "x-autonomy-node-id";
/** Who is calling an admin RPC, e.g. "autonomy-cli root@host" or "agent cp-node-1". */
export const CALLER_HEADER = "x-autonomy-caller";
/** Set by an agent when it forwards an admin call on behalf of its node. */
export const FORWARDED_BY_HEADER = "x-autonomy-forwarded-by";

/**
 * One key per admin request (the CLI makes one per invocation): a coordinator
 * that already took a request with this key returns its first result instead
 * of acting again, so a request retried on the next coordinator is done once.
 */
export const IDEMPOTENCY_KEY_HEADER = "x-autonomy-idempotency-key";

/** The cluster an agent's report stream belongs to, so a coordinator serving several clusters routes it. */
export const CLUSTER_ID_HEADER = "x-autonomy-cluster-id";

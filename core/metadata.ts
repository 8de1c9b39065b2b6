/**
 * Identity travels in call metadata, never in message bodies, so that token
 * or mTLS authentication can replace these headers without a wire change.
 */
export const NODE_ID_HEADER = "x-autonomy-node-id";
/** Who is calling an admin RPC, e.g. "autonomy-cli root@host" or "agent cp-node-1". */
export const CALLER_HEADER = "x-autonomy-caller";
/** Set by an agent when it forwards an admin call on behalf of its node. */
export const FORWARDED_BY_HEADER = "x-autonomy-forwarded-by";

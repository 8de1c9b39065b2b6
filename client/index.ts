/*
 * autonomy-ha/client: what a service next to an agent needs to follow the
 * leader and fence its writes (docs/client.md).
 */
export { followLeader } from "./follow-leader.js";
export type { FollowLeaderOptions } from "./follow-leader.js";
export { whileLeader, DEFAULT_AUTHORITY_MS, DEFAULT_CONFIRM_INTERVAL_MS, DEFAULT_LEASE_MS } from "./while-leader.js";
export type { LeaderTerm, WhileLeaderOptions } from "./while-leader.js";
export { fencedTransaction, StaleEpochError } from "./fenced-transaction.js";
export type { FencedTransactionOptions, Queryable } from "./fenced-transaction.js";
export { credentialsFromEnv, loadCredentials, CREDENTIAL_ENV } from "./credentials.js";
export type { ClientCredentials, CredentialFiles } from "./credentials.js";
export type { FollowEvent, Leader, LeaderCause, LeaderUpdate, StreamBehind, StreamDisconnected, StreamReconnected } from "./leader-event.js";
export { HaError, ErrorCode, STALE_EPOCH_SQLSTATE } from "../core/errors.js";
export type { Backoff } from "./follow-stream.js";

/*
 * The reconnect loop of `autonomy ha watch` and `autonomy dev` is the client
 * library's (client/follow-stream.ts): one loop for the CLI and for the
 * services that follow the leader, so both reconnect the same way.
 */
export { backoffDelay, DEFAULT_BACKOFF, followStream, isPermanent, StreamClosedError } from "../client/follow-stream.js";
export type { Backoff, FollowOptions } from "../client/follow-stream.js";

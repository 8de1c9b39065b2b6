import { timestampDate } from "@bufbuild/protobuf/wkt";
import { LeaderEventKind, type WatchLeaderResponse } from "../gen/autonomy/ha/v1/leader_pb.js";
import type { LeaderInfo } from "../gen/autonomy/ha/v1/types_pb.js";

/** Who holds write authority, as one server saw it. */
export interface Leader {
  /** The node holding the lock and the epoch; "" when nobody does. */
  readonly holderId: string;
  /** The epoch: the fencing token to pass to fencedTransaction / assert_epoch(). */
  readonly epoch: number;
  /** Whether the holder may write now (lock on a live session, epoch current, quorum met). */
  readonly writeReady: boolean;
  /** When the holder opened this epoch (database time). */
  readonly acquiredAt: Date | undefined;
}

/**
 * Why a leader event was given: the server's event kind, or "history" for an
 * epoch the stream skipped (a reconnect, a server that fell behind) that
 * followLeader read back from the epoch history so none is missing.
 */
export type LeaderCause =
  | "snapshot"
  | "leader_changed"
  | "write_ready_changed"
  | "leader_lost"
  | "split_brain_detected"
  | "split_brain_resolved"
  | "history";

/** The leader changed (or a split-brain was found or resolved). */
export interface LeaderUpdate {
  readonly type: "leader";
  readonly leader: Leader;
  readonly cause: LeaderCause;
  /** The server's revision of this event (0 for "history"); each server counts on its own. */
  readonly revision: bigint;
  /** The server that said so. */
  readonly url: string;
  /** When that server saw the change. */
  readonly at: Date;
  /** The change in words. */
  readonly message: string;
}

/** The stream broke; followLeader is reconnecting (to the next URL) with backoff. */
export interface StreamDisconnected {
  readonly type: "disconnected";
  readonly url: string;
  readonly reason: string;
  readonly at: Date;
}

/** The stream is back after a break. */
export interface StreamReconnected {
  readonly type: "reconnected";
  readonly url: string;
  readonly at: Date;
  readonly attempts: number;
  readonly downMs: number;
}

/**
 * What was given may not be the whole story: the server skipped revisions,
 * reports an older epoch than already seen (it lags; ignored until it
 * catches up), or epochs were skipped and the history could not be read.
 */
export interface StreamBehind {
  readonly type: "behind";
  readonly url: string;
  readonly reason: string;
  /** Epochs that were never given, when that is what happened (inclusive). */
  readonly missedEpochs?: { readonly from: number; readonly to: number };
}

export type FollowEvent = LeaderUpdate | StreamDisconnected | StreamReconnected | StreamBehind;

const causes: Record<LeaderEventKind, LeaderCause | undefined> = {
  [LeaderEventKind.UNSPECIFIED]: undefined,
  [LeaderEventKind.SNAPSHOT]: "snapshot",
  [LeaderEventKind.LEADER_CHANGED]: "leader_changed",
  [LeaderEventKind.WRITE_READY_CHANGED]: "write_ready_changed",
  [LeaderEventKind.LEADER_LOST]: "leader_lost",
  [LeaderEventKind.SPLIT_BRAIN_DETECTED]: "split_brain_detected",
  [LeaderEventKind.SPLIT_BRAIN_RESOLVED]: "split_brain_resolved",
};

/** The cause a wire event kind stands for; undefined for UNSPECIFIED and kinds newer than this library. */
export function causeOf(kind: LeaderEventKind): LeaderCause | undefined {
  return causes[kind];
}

export function leaderFromWire(info: LeaderInfo | undefined): Leader {
  return {
    holderId: info?.holderId ?? "",
    epoch: Number(info?.epoch ?? 0n),
    writeReady: info?.writeReady ?? false,
    acquiredAt: info?.acquiredAt ? timestampDate(info.acquiredAt) : undefined,
  };
}

/** A wire event as a LeaderUpdate; undefined for a kind this client does not know. */
export function updateFromWire(e: WatchLeaderResponse, url: string): LeaderUpdate | undefined {
  const cause = causeOf(e.kind);
  if (!cause) return undefined;
  return { type: "leader", leader: leaderFromWire(e.leader), cause, revision: e.revision, url, at: e.at ? timestampDate(e.at) : new Date(), message: e.message };
}

export function sameLeader(a: Leader, b: Leader): boolean {
  return a.holderId === b.holderId && a.epoch === b.epoch && a.writeReady === b.writeReady;
}

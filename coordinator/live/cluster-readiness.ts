import type { LeaderView } from "../../core/model.js";
import { highestEpochKnown, nodeById, onDatabase, type ClusterView } from "../view/cluster-view.js";
import type { DatabaseFailover } from "./database-failover.js";

/** Seed 004 §5's RTO check: is the cluster writable, through which server, by whom. */
export interface ClusterReadiness {
  readonly writesUsable: boolean;
  readonly reason: string;
  readonly writer: {
    readonly node: string;
    readonly systemIdentifier: string;
    readonly timeline: number;
    readonly region: string;
  };
  readonly primaryHost: string;
  readonly highestEpoch: number;
  readonly lastPromotion: { readonly at: Date; readonly timeline: number; readonly stamp: number; readonly rtoMs: number | undefined } | undefined;
}

/**
 * Writes are usable when a Write-Ready leader holds the current term in the
 * database the coordinator reads, that database is a writable primary no
 * promotion superseded, and the leader's own report names that server.
 */
export function clusterReadiness(view: ClusterView, leader: LeaderView, databases: DatabaseFailover | undefined, primaryHost: string): ClusterReadiness {
  const db = view.db;
  const node = leader.holderId ? nodeById(view, leader.holderId) : undefined;
  const identity = db?.reachable ? db.identity : undefined;
  const superseded = identity ? databases?.timelineSuperseded(identity.systemIdentifier, identity.timeline) : undefined;
  const reason = !db?.reachable
    ? `the lock database is unreachable${db?.error ? `: ${db.error}` : ""}`
    : identity?.inRecovery
      ? "the coordinator's database is a standby (in recovery)"
      : superseded
        ? superseded
        : !leader.holderId
          ? "no leader"
          : !leader.writeReady
            ? `leader ${leader.holderId} is not Write-Ready`
            : node && onDatabase(node.report.lockDatabase, identity) === false
              ? `leader ${leader.holderId} holds its lock on another server (${node.report.lockDatabaseId})`
              : "";
  const record = databases?.promotionRecord;
  const measured = databases?.lastPromotion;
  return {
    writesUsable: reason === "",
    reason,
    writer: {
      node: leader.holderId,
      systemIdentifier: identity?.systemIdentifier ?? "",
      timeline: identity?.timeline ?? 0,
      region: node?.report.region || record?.region || "",
    },
    primaryHost,
    highestEpoch: highestEpochKnown(view),
    lastPromotion: measured
      ? { at: measured.seenAt, timeline: measured.standing.timeline, stamp: measured.standing.stamp, rtoMs: measured.rtoMs }
      : record
        ? { at: record.stampedAt, timeline: record.timeline, stamp: record.stampedEpoch, rtoMs: undefined }
        : undefined,
  };
}

/** The nested `cluster` object of /readyz (seed 004 §5). */
export function clusterReadinessJson(r: ClusterReadiness): Record<string, unknown> {
  return {
    writes_usable: r.writesUsable,
    ...(r.reason ? { reason: r.reason } : {}),
    writer: {
      node_id: r.writer.node || null,
      system_identifier: r.writer.systemIdentifier || null,
      timeline: r.writer.timeline || null,
      writer_region: r.writer.region || null,
    },
    primary_host: r.primaryHost || null,
    highest_epoch: r.highestEpoch,
    last_promotion: r.lastPromotion
      ? { at: r.lastPromotion.at.toISOString(), timeline: r.lastPromotion.timeline, stamp: r.lastPromotion.stamp, rto_ms: r.lastPromotion.rtoMs ?? null }
      : null,
  };
}

import { create } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { GetStatusResponseSchema, type NodeStatus } from "../../../gen/autonomy/ha/v1/admin_pb.js";
import { LagStatus, NodeRole } from "../../../gen/autonomy/ha/v1/types_pb.js";
import { formatDurationMs } from "../../../core/duration.js";
import { describeError } from "../../../core/errors.js";
import type { LeaderEventLog } from "../../../core/leader-event-log.js";
import { readEpochs } from "../../../db/leadership.js";
import type { StreamWriter } from "../../../rpc/http-router.js";
import { termHistory } from "../../audit/term-history.js";
import type { OperationContext } from "../operation-context.js";
import { statusResponse } from "../status.js";
import { leaderEventJson, sseEvent } from "../../../rpc/web-assets.js";

/** How often the stream sends a fresh status (ages and lags move without events). */
export const STATUS_EVERY_MS = 1_000;
/** The audit tail is re-read this often, and sent only when it changed. */
const AUDIT_EVERY_MS = 2_000;
/** Term history comes from the lock database: on every leader change, else this often. */
const HISTORY_EVERY_MS = 15_000;
const AUDIT_TAIL = 200;
const HISTORY_TERMS = 50;

export interface ClusterEventSources {
  readonly ctx: OperationContext;
  readonly events: LeaderEventLog;
}

const enumName = (names: Record<number, string>, v: number) => (v === 0 ? "unknown" : (names[v] ?? "unknown").toLowerCase());

/** A node's row, named as `autonomy ha status --output json` names it. */
function nodeJson(n: NodeStatus) {
  const lag = enumName(LagStatus, n.lagStatus);
  return {
    node_id: n.nodeId,
    role: enumName(NodeRole, n.role),
    connected: n.connected,
    stale: n.stale || !n.connected,
    last_report_age_ms: Number(n.lastReportAgeMs),
    session_lock_held: n.sessionLockHeld,
    write_ready: n.writeReady,
    write_ready_reason: n.writeReadyReason,
    epoch: Number(n.epoch),
    priority: n.priority,
    nofailover: n.nofailover,
    lag_status: lag,
    replay_lag: lag === "unknown" ? "unknown" : formatDurationMs(Math.round(n.replayLagSeconds * 1000)),
    replay_lag_seconds: n.replayLagSeconds,
  };
}

/** What `autonomy ha status` shows, with its JSON names, plus the database reading and the split-brain finding's explanation. */
export function statusEventJson({ ctx }: ClusterEventSources) {
  const { engine, clock, policy } = ctx;
  const view = engine.view();
  const { finding, detectedAt } = engine.finding();
  const wire = create(
    GetStatusResponseSchema,
    statusResponse(view, engine.leader(), "", { queriedAt: clock.now(), splitBrain: finding.detected, timing: policy, nowMs: clock.monotonicMs() }),
  );
  return {
    cluster_id: wire.clusterId,
    leader: {
      holder_id: wire.leader?.holderId ?? "",
      epoch: Number(wire.leader?.epoch ?? 0n),
      acquired_at: wire.leader?.acquiredAt ? timestampDate(wire.leader.acquiredAt).toISOString() : null,
      write_ready: wire.leader?.writeReady ?? false,
    },
    nodes: wire.nodes.map(nodeJson),
    maintenance: wire.maintenance,
    split_brain_detected: wire.splitBrainDetected,
    database_error: wire.databaseError || null,
    database_reachable: view.db?.reachable === true,
    database: view.db ? (view.db.reachable ? "reachable" : view.db.error || "unreachable") : "not read yet",
    split_brain: { detected: finding.detected, detected_at: detectedAt?.toISOString() ?? null, explanation: finding.explanation },
  };
}

/** GetHistory's terms, named as `autonomy ha history --output json` names them. */
export async function historyEventJson({ ctx }: ClusterEventSources) {
  const rows = await readEpochs(ctx.pool, ctx.schema, ctx.policy.clusterId, { limit: HISTORY_TERMS });
  const actions = await ctx.audit.query({ limit: 10_000, clusterId: ctx.policy.clusterId });
  return termHistory(rows, actions).map((t) => ({
    epoch: t.epoch,
    holder_id: t.holderId,
    acquired_at: t.acquiredAt?.toISOString() ?? null,
    resigned_at: t.resignedAt?.toISOString() ?? null,
    end_reason: t.endReason ?? "",
    opened_by: t.openedBy?.type || null,
    operator: t.openedBy?.operator ?? "",
    reason: t.openedBy?.reason ?? "",
    ended_by: t.endedBy?.type || null,
    end_operator: t.endedBy?.operator ?? "",
    end_action_reason: t.endedBy?.reason ?? "",
  }));
}

/**
 * The web view's one stream: the leader events as they happen (each followed
 * by a fresh status, history and audit tail), a status every second, the
 * audit tail when it changed and the history now and then. The page keeps
 * what it needs (lag sparklines) from this; it never polls.
 */
export async function streamClusterEvents(src: ClusterEventSources, write: StreamWriter, signal: AbortSignal): Promise<void> {
  const { clock, audit, policy } = src.ctx;
  const send = (event: string, data: unknown) => write(sseEvent(event, data));
  write("retry: 2000\n\n");
  let lastAudit = "";
  let historyAt = -Infinity;
  let auditAt = -Infinity;
  // The leader loop and the tick loop both refresh; one refresh at a time.
  let refreshing: Promise<void> = Promise.resolve();
  const refresh = (force: boolean) =>
    (refreshing = refreshing.then(async () => {
      if (signal.aborted) return;
      const now = clock.monotonicMs();
      if (force || now - auditAt >= AUDIT_EVERY_MS) {
        auditAt = now;
        try {
          const events = await audit.query({ limit: AUDIT_TAIL, clusterId: policy.clusterId });
          const key = `${events.length}:${events.at(-1)?.id ?? ""}`;
          if (force || key !== lastAudit) send("audit", { events });
          lastAudit = key;
        } catch (err) {
          send("audit", { error: describeError(err) });
        }
      }
      if (force || now - historyAt >= HISTORY_EVERY_MS) {
        historyAt = now;
        try {
          send("history", { terms: await historyEventJson(src) });
        } catch (err) {
          send("history", { error: describeError(err) });
        }
      }
    }));
  const leaders = (async () => {
    for await (const e of src.events.watch(signal)) {
      send("leader", leaderEventJson(e));
      send("status", statusEventJson(src));
      await refresh(true);
    }
  })();
  try {
    while (!signal.aborted) {
      send("status", statusEventJson(src));
      await refresh(false);
      await clock.sleep(STATUS_EVERY_MS, signal).catch(() => undefined);
    }
  } finally {
    await leaders.catch(() => undefined);
    await refreshing;
  }
}

import type { GetStatusResponse } from "../../gen/autonomy/ha/v1/admin_pb.js";
import { lagFromWire, roleFromWire } from "../../rpc/wire.js";
import { lagText, num, oneLine, table, visible } from "../output/format.js";

/*
 * The compact live view `autonomy dev` draws on a terminal: leader and epoch,
 * a row per node (role, lag, health, connected), the workload's counters and
 * the last few events of the leader stream. Rendering is a pure function of
 * what was last read; the command redraws it in place.
 */

export interface LiveEvent {
  readonly at: Date;
  readonly kind: string;
  readonly message: string;
}

export interface LiveView {
  /** The last GetStatus answer, if any. */
  readonly status?: GetStatusResponse;
  /** Why the last GetStatus failed, when it did. */
  readonly statusError?: string;
  /** Newest last. */
  readonly events: readonly LiveEvent[];
  readonly counters?: { readonly written: number; readonly staleRejected: number };
}

/** How many leader-stream events the view keeps. */
export const RECENT_EVENTS = 5;

const hms = (d: Date) => d.toISOString().slice(11, 19);

function health(n: GetStatusResponse["nodes"][number]): string {
  const role = roleFromWire(n.role);
  if (!n.connected) return "no reports";
  if (role === "fenced") return "fenced";
  const lag = lagFromWire(n.lagStatus);
  if (lag === "critical") return "lag critical";
  if (lag === "warn") return "lag warn";
  return "ok";
}

export function renderLiveView(view: LiveView, now: Date): string[] {
  const s = view.status;
  const leader = s?.leader?.holderId
    ? `leader ${visible(s.leader.holderId)}, epoch ${num(s.leader.epoch)}, ${s.leader.writeReady ? "Write-Ready" : "not Write-Ready"}`
    : s
      ? "no leader"
      : "waiting for the coordinator";
  const flags = s ? [s.splitBrainDetected ? "SPLIT-BRAIN DETECTED" : "no split-brain", ...(s.maintenance ? ["maintenance: paused"] : [])] : [];
  const lines = [`autonomy dev · ${hms(now)} · ${[leader, ...flags].join(" · ")}`];
  if (view.statusError) lines.push(`  status: ${oneLine(view.statusError)}`);
  if (s?.databaseError) lines.push(`  lock database: ${oneLine(s.databaseError)}`);
  if (s && s.nodes.length > 0) {
    lines.push(
      "",
      ...table(
        ["NODE", "ROLE", "EPOCH", "LAG", "HEALTH", "CONNECTED"],
        s.nodes.map((n) => [
          n.nodeId,
          roleFromWire(n.role),
          n.epoch > 0n ? String(num(n.epoch)) : "-",
          `${lagFromWire(n.lagStatus)} ${lagText(n.replayLagSeconds)}`,
          health(n),
          n.connected ? "yes" : "no",
        ]),
        "  ",
      ),
    );
  }
  if (view.counters) lines.push("", `  workload: fenced writes ${view.counters.written}, stale-epoch rejections ${view.counters.staleRejected}`);
  lines.push("", "Recent events:");
  const recent = view.events.slice(-RECENT_EVENTS);
  if (recent.length === 0) lines.push("  (none yet)");
  for (const e of recent) lines.push(`  ${hms(e.at)}  ${e.kind.padEnd(20)}  ${oneLine(e.message)}`.trimEnd());
  lines.push("", "Ctrl-C stops it all.");
  return lines;
}

/**
 * What to write to replace a frame of `previousLines` lines with `lines`:
 * back to the first line of the old frame, clear to the end of the screen,
 * then the new frame. The first frame is written as it is.
 */
export function redraw(previousLines: number, lines: readonly string[]): string {
  const up = previousLines > 0 ? `\x1b[${previousLines}F\x1b[J` : "";
  return `${up}${lines.join("\n")}\n`;
}

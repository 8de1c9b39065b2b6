import type { DetectSplitBrainResponse, RecoverSplitBrainResponse, SplitBrainCriterion } from "../../gen/autonomy/ha/v1/admin_pb.js";
import { labelled, num, timeOrNull, timeText, visible } from "./format.js";

/*
 * `autonomy ha split-brain detect|recover`: seed 002 §1 and §3. The seed's
 * three criteria come first, in its order, then the ones we added.
 */

/** Stable criterion names from admin.proto and the label each prints under (≤ 21 characters so values line up). */
const LABELS: readonly (readonly [string, string])[] = [
  ["epoch_divergence", "Epoch Divergence"],
  ["holder_mismatch", "Holder Mismatch"],
  ["unclosed_epochs", "Unclosed Epochs"],
  ["multiple_lock_holders", "Multiple Holders"],
  ["multiple_write_ready", "Multiple Write-Ready"],
  ["multiple_writable_primaries", "Multiple Primaries"],
];

/** Values start in column 24, as in the runbook. */
const WIDTH = 22;

interface Row {
  readonly name: string;
  readonly detected: boolean;
  readonly detail: string;
}

/** The seed's three from the top-level fields (always shown), enriched by `criteria`, then any others. */
function criteriaRows(r: DetectSplitBrainResponse): Row[] {
  const given = new Map<string, SplitBrainCriterion>(r.criteria.map((c) => [c.name, c]));
  const seed: Row[] = [
    { name: "epoch_divergence", detected: r.epochDivergence, detail: given.get("epoch_divergence")?.detail ?? "" },
    { name: "holder_mismatch", detected: r.holderMismatch, detail: given.get("holder_mismatch")?.detail ?? "" },
    {
      // More than one open epoch is the finding; the current leader's own epoch is always open.
      name: "unclosed_epochs",
      detected: given.get("unclosed_epochs")?.detected ?? r.unclosedEpochs > 1,
      detail: given.get("unclosed_epochs")?.detail || (r.unclosedEpochs > 1 ? `${r.unclosedEpochs} epochs have resigned_at = NULL` : ""),
    },
  ];
  const seedNames = new Set(seed.map((s) => s.name));
  const known = LABELS.map(([n]) => n);
  const rest = r.criteria
    .filter((c) => !seedNames.has(c.name))
    .sort((a, b) => rank(known, a.name) - rank(known, b.name))
    .map((c) => ({ name: c.name, detected: c.detected, detail: c.detail }));
  return [...seed, ...rest];
}

const rank = (known: string[], name: string) => (known.includes(name) ? known.indexOf(name) : known.length);

function labelOf(name: string): string {
  return LABELS.find(([n]) => n === name)?.[1] ?? name.split("_").map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join(" ");
}

export function detectText(r: DetectSplitBrainResponse): string[] {
  const lines = [
    "Split-Brain Status",
    ...labelled(
      [
        ["Split-Brain Detected", String(r.splitBrainDetected)],
        ["Detected At", timeText(r.detectedAt)],
      ],
      "  ",
      WIDTH,
    ),
    "",
    "Criteria",
    ...labelled(
      criteriaRows(r).map((c) => [labelOf(c.name), c.detail ? `${c.detected} (${c.detail})` : String(c.detected)] as const),
      "  ",
      WIDTH,
    ),
  ];
  const explanation = r.explanation.split("\n").map((l) => l.trim()).filter(Boolean);
  if (explanation.length > 0) lines.push("", "Explanation:", ...explanation.map((l) => `  ${visible(l)}`));
  return lines;
}

/** Exactly seed 002's fields (unclosed_epochs is the count, as there), plus every criterion. */
export function detectJson(r: DetectSplitBrainResponse) {
  return {
    split_brain_detected: r.splitBrainDetected,
    detected_at: timeOrNull(r.detectedAt),
    epoch_divergence: r.epochDivergence,
    holder_mismatch: r.holderMismatch,
    unclosed_epochs: r.unclosedEpochs,
    criteria: criteriaRows(r).map((c) => ({ name: c.name, detected: c.detected, detail: c.detail })),
  };
}

export function recoverText(r: RecoverSplitBrainResponse): string[] {
  const rows: [string, string][] = [
    ["Strategy", r.strategy],
    ["Recovered At", timeText(r.recoveredAt)],
  ];
  if (r.leaderId) rows.push(["Leader", r.leaderId], ["Epoch", String(num(r.epoch))]);
  if (r.resignedNodes.length > 0) rows.push(["Resigned", r.resignedNodes.join(", ")]);
  rows.push(["Message", r.message]);
  return ["Split-Brain Recovery", ...labelled(rows, "  ", 14)];
}

export function recoverJson(r: RecoverSplitBrainResponse) {
  return {
    success: r.success,
    strategy: r.strategy,
    recovered_at: timeOrNull(r.recoveredAt),
    message: r.message,
    leader_id: r.leaderId,
    epoch: num(r.epoch),
    resigned_nodes: [...r.resignedNodes],
    request_id: r.requestId,
  };
}

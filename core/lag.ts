import type { LagStatus } from "./model.js";

/**
 * The one lag classifier. Agents classify what they measure with their
 * --lag-warn/--lag-critical; the coordinator classifies the seconds a node
 * reports with its own thresholds and keeps the worse of the two, so a
 * mismatch between the two configurations can only make it more careful.
 */
export interface LagThresholds {
  readonly warnSeconds: number;
  readonly criticalSeconds: number;
}

/** Classifies a lag (seconds) against warn/critical thresholds; unknown when it was not measured. */
export function classifyLag(lagSeconds: number | undefined, warnSeconds: number, criticalSeconds: number): LagStatus {
  if (lagSeconds === undefined || Number.isNaN(lagSeconds)) return "unknown";
  if (lagSeconds > criticalSeconds) return "critical";
  if (lagSeconds > warnSeconds) return "warn";
  return "ok";
}

const severity: readonly LagStatus[] = ["unknown", "ok", "warn", "critical"];

/** The more severe of two statuses ("unknown" is the least severe: it says nothing). */
export function worseLag(a: LagStatus, b: LagStatus): LagStatus {
  return severity.indexOf(a) >= severity.indexOf(b) ? a : b;
}

/** A reported lag judged again with our thresholds: the worse of the reporter's status and ours. */
export function judgeLag(reported: LagStatus, lagSeconds: number, t: LagThresholds): LagStatus {
  return worseLag(classifyLag(lagSeconds, t.warnSeconds, t.criticalSeconds), reported);
}

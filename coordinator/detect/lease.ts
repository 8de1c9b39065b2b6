import type { NodeState } from "../view/cluster-view.js";

/**
 * The timing contract between an agent and the coordinator: a leader fences
 * itself when its lock is unconfirmed for --lease, and the coordinator ends a
 * hung leader's session only after --failure-timeout. Unless the lease is
 * shorter, a leader the coordinator has given up on may still believe it holds
 * write authority while its successor takes over.
 */
export interface LeaseFinding {
  readonly nodeId: string;
  readonly leaseMs: number;
  readonly failureTimeoutMs: number;
  readonly detail: string;
}

/** A finding when the node reports a lease not below the failure timeout; undefined when fine or not reported. */
export function leaseFinding(node: NodeState, timing: { readonly failureTimeoutMs: number }): LeaseFinding | undefined {
  const leaseMs = node.report.leaseMs;
  // 0: an agent older than the field; nothing to judge.
  if (leaseMs <= 0 || leaseMs < timing.failureTimeoutMs) return undefined;
  return {
    nodeId: node.nodeId,
    leaseMs,
    failureTimeoutMs: timing.failureTimeoutMs,
    detail:
      `${node.nodeId} runs with --lease ${leaseMs}ms, not below the coordinator's --failure-timeout ${timing.failureTimeoutMs}ms: ` +
      `a hung leader could still claim write authority when its successor is ordered to take over; lower --lease or raise --failure-timeout`,
  };
}

export function leaseFindings(nodes: readonly NodeState[], timing: { readonly failureTimeoutMs: number }): LeaseFinding[] {
  return nodes.flatMap((n) => leaseFinding(n, timing) ?? []);
}

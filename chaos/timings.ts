// The agents' timing flags, passed explicitly so the I5 bound below is
// derived from what the agents actually run with (they are the defaults of
// agent/config.ts and coordinator/settings.ts, docs/configuration.md).

export const AGENT_TIMINGS = {
  heartbeatIntervalMs: 250,
  leaseMs: 1_000,
  campaignIntervalMs: 200,
  takeoverAfterMs: 2_000,
  connectTimeoutMs: 5_000,
} as const;

/** The coordinator's default: a leader silent on its stream and its heartbeat this long is dead. */
export const COORDINATOR_FAILURE_TIMEOUT_MS = 2_500;

/** Starting an agent or coordinator process (Node start-up, migrations, first report). */
const PROCESS_START_MS = 2_000;

/**
 * I5: once every fault is healed, exactly one Write-Ready leader within
 *   connect-timeout   a lock session whose connection died during the fault is noticed,
 * + takeover-after    a follower ends a leader session that no longer heartbeats,
 * + lease             a leader that lost its session has fenced itself,
 * + failure-timeout   the coordinator judges a silent leader dead and orders a campaign,
 * + campaign-interval the next try for the free lock,
 * + process start     a restarted agent or coordinator is up.
 * = 5 + 2 + 1 + 2.5 + 0.2 + 2 = 12.7 s with the defaults.
 */
export const CONVERGENCE_BOUND_MS =
  AGENT_TIMINGS.connectTimeoutMs +
  AGENT_TIMINGS.takeoverAfterMs +
  AGENT_TIMINGS.leaseMs +
  COORDINATOR_FAILURE_TIMEOUT_MS +
  AGENT_TIMINGS.campaignIntervalMs +
  PROCESS_START_MS;

export function agentTimingFlags(): string[] {
  const t = AGENT_TIMINGS;
  return [
    "--heartbeat-interval", `${t.heartbeatIntervalMs}ms`,
    "--lease", `${t.leaseMs}ms`,
    "--campaign-interval", `${t.campaignIntervalMs}ms`,
    "--takeover-after", `${t.takeoverAfterMs}ms`,
    "--connect-timeout", `${t.connectTimeoutMs}ms`,
  ];
}

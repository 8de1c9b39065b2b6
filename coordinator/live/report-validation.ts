import type { AgentReport } from "../../gen/autonomy/ha/v1/agent_pb.js";
import { HaError, ErrorCode, invalidArgument } from "../../core/errors.js";
import { MAX_EPOCH, MAX_EPOCH_JUMP } from "../../db/leadership.js";

/** Epochs and sequence numbers become JavaScript numbers past this point: beyond it they are not exact. */
const MAX_EXACT = BigInt(Number.MAX_SAFE_INTEGER);
/** Ten years: any lag beyond that is a bug or an attack, not a measurement. */
const MAX_LAG_SECONDS = 10 * 365 * 24 * 3600;
const MAX_TEXT = 4096;
const REGION = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/**
 * Refuses a report with values no real agent sends, before anything of it is
 * applied: a hostile or broken agent gets a clear error and changes nothing.
 * `confirmedEpoch` is the highest epoch confirmed in the lock database; an
 * epoch more than MAX_EPOCH_JUMP above it is refused. Without it, only the
 * bigint range is checked.
 */
export function validateReport(nodeId: string, r: AgentReport, clusterId: string, confirmedEpoch?: number): void {
  const bad = (what: string) => invalidArgument(`report from ${nodeId} rejected: ${what}`);
  if (r.clusterId !== "" && r.clusterId !== clusterId) {
    throw new HaError(ErrorCode.FailedPrecondition, `node ${nodeId} reports cluster "${r.clusterId}"; this coordinator serves cluster "${clusterId}"`);
  }
  if (r.sequence > MAX_EXACT) throw bad(`sequence ${r.sequence} is out of range`);
  const bound = confirmedEpoch === undefined ? undefined : BigInt(Math.max(0, Math.trunc(confirmedEpoch))) + BigInt(MAX_EPOCH_JUMP);
  for (const [name, v] of [
    ["epoch", r.epoch],
    ["highest_epoch_seen", r.highestEpochSeen],
    ["observed_leader.epoch", r.observedLeader?.epoch ?? 0n],
  ] as const) {
    if (v > MAX_EPOCH) throw bad(`${name} ${v} is out of range (above ${MAX_EPOCH}, the largest bigint)`);
    if (v > MAX_EXACT) throw bad(`${name} ${v} is out of range (above ${MAX_EXACT}, the largest integer handled exactly)`);
    if (bound !== undefined && v > bound) {
      throw bad(`${name} ${v} is more than ${MAX_EPOCH_JUMP} above epoch ${confirmedEpoch}, the highest epoch confirmed in the lock database (bound ${bound})`);
    }
  }
  const lags: [string, number][] = [
    ["replication.max_write_lag_seconds", r.replication?.maxWriteLagSeconds ?? 0],
    ["replication.max_replay_lag_seconds", r.replication?.maxReplayLagSeconds ?? 0],
    ["local_database.replay_lag_seconds", r.localDatabase?.replayLagSeconds ?? 0],
    ...(r.replication?.replicas ?? []).flatMap((x, i): [string, number][] => [
      [`replication.replicas[${i}].write_lag_seconds`, x.writeLagSeconds],
      [`replication.replicas[${i}].replay_lag_seconds`, x.replayLagSeconds],
    ]),
  ];
  for (const [name, v] of lags) {
    if (!Number.isFinite(v) || v < 0 || v > MAX_LAG_SECONDS) throw bad(`${name} ${v} is not a lag in seconds`);
  }
  if ((r.replication?.replicas.length ?? 0) > 1000) throw bad("more than 1000 replicas");
  for (const [name, v] of [
    ["endpoint", r.endpoint],
    ["lock_database_id", r.lockDatabaseId],
    ["write_ready_reason", r.writeReadyReason],
    ["database_error", r.databaseError],
    ["version", r.version],
    ["region", r.region],
  ] as const) {
    if (v.length > MAX_TEXT) throw bad(`${name} is longer than ${MAX_TEXT} characters`);
  }
  if (r.region !== "" && !REGION.test(r.region)) throw bad(`region "${r.region.slice(0, 100)}" is not a region name (1-63 letters, digits, '.', '_' or '-')`);
  if (r.endpoint !== "" && !/^https?:\/\/[^\s]+$/.test(r.endpoint)) throw bad(`endpoint "${r.endpoint.slice(0, 100)}" is not an http(s) URL`);
}

// What a run records and what the checker reads: plain data, written to the
// JSON history file as is. Times are epoch milliseconds of the harness's
// clock unless a field says otherwise (commit timestamps are the database's,
// on the same host).

import type { FaultKind } from "./faults.js";
import type { ScheduledFault } from "./schedule.js";

export interface FaultRecord {
  readonly index: number;
  readonly kind: FaultKind;
  readonly startedAt: number;
  readonly endedAt: number;
  /** What it acted on: a node id, "coordinator", a server name. */
  readonly target: string;
  readonly detail: string;
  /** false when it could not be injected (e.g. no leader to kill); it does not count as injected. */
  readonly injected: boolean;
}

export type WriteOutcome = "ack" | "stale" | "error";

export interface WriteAttempt {
  /** Unique across the run; the row's key in chaos_writes. */
  readonly id: string;
  readonly nodeId: string;
  readonly epoch: number;
  /** The server it was sent to (its name, e.g. "primary", "standby1"). */
  readonly server: string;
  readonly startedAt: number;
  readonly endedAt: number;
  readonly outcome: WriteOutcome;
  readonly error?: string;
}

export interface ReadySample {
  readonly nodeId: string;
  readonly tick: number;
  readonly sentAt: number;
  readonly receivedAt: number;
  readonly ready: boolean;
  readonly epoch: number;
}

export interface EpochRowRecord {
  readonly epoch: number;
  readonly holderId: string;
  readonly acquiredAt: string;
  readonly resignedAt: string | null;
  readonly endReason: string | null;
}

export interface CommittedWrite {
  readonly id: string;
  readonly nodeId: string;
  readonly epoch: number;
  /** pg_xact_commit_timestamp of the row's transaction, ISO, microseconds kept in commitUs. */
  readonly commitUs: number;
}

/** What one database server holds after the run. */
export interface DatabaseSnapshot {
  readonly server: string;
  /** The authoritative primary at the end of the run (the last promoted server, or the original primary). */
  readonly authoritative: boolean;
  readonly timeline: number | null;
  readonly readable: boolean;
  readonly error?: string;
  readonly epochs: EpochRowRecord[];
  readonly writes: CommittedWrite[];
}

export interface AuditRecord {
  readonly time: string;
  readonly type: string;
  readonly node_id: string;
  readonly epoch: number;
  readonly message: string;
  readonly evidence: Record<string, unknown>;
}

/** A time the coordinator could not see the cluster (killed, stopped, restarting). */
export interface BlindWindow {
  readonly from: number;
  readonly to: number;
  readonly why: string;
}

export interface HostileOutcome {
  readonly kind: "rogue-stream" | "forged-report";
  readonly at: number;
  /** true when the coordinator refused it as it should. */
  readonly refused: boolean;
  readonly detail: string;
  /** Forged reports: the epoch claimed, which must never appear in a database or the audit. */
  readonly claimedEpoch?: number;
  /** Forged reports: the node id the forger reported as, which must never lead. */
  readonly impostor?: string;
}

export interface Promotion {
  readonly at: number;
  readonly from: string;
  readonly to: string;
  /** Whether the promoted standby was synchronous when the primary was lost (then RPO must be 0). */
  readonly standbyWasSync: boolean;
}

export interface ChaosHistory {
  readonly seed: number;
  readonly durationMs: number;
  readonly nodes: string[];
  readonly faultKinds: FaultKind[];
  readonly slowWritesMs: number;
  readonly schedule: ScheduledFault[];
  readonly startedAt: number;
  /** When the fault phase began and when the last fault was healed. */
  readonly faultsStartedAt: number;
  readonly faultsEndedAt: number;
  readonly endedAt: number;
  /** The I5 bound used. */
  readonly convergenceBoundMs: number;
  readonly faults: FaultRecord[];
  readonly writes: WriteAttempt[];
  readonly samples: ReadySample[];
  readonly databases: DatabaseSnapshot[];
  readonly audit: AuditRecord[];
  readonly blindWindows: BlindWindow[];
  readonly hostile: HostileOutcome[];
  readonly promotions: Promotion[];
  readonly notes: string[];
}

/**
 * Which PostgreSQL server holds a node's lock: the system identifier (shared
 * by a primary and its standbys, new with every initdb) and the timeline
 * (raised by every promotion). Two nodes hold the same lock only when both
 * numbers match. Reported by agents as typed fields, never parsed from text.
 */
export interface LockDatabaseIdentity {
  /** pg_control_system().system_identifier in decimal (a uint64: kept as text). */
  readonly systemIdentifier: string;
  readonly timeline: number;
}

/** The display form, e.g. "7301000000000000001/tl2": for people and logs, never parsed. */
export function lockDatabaseLabel(id: LockDatabaseIdentity | undefined): string {
  return id ? `${id.systemIdentifier}/tl${id.timeline}` : "";
}

/** Whether two identities name the same server on the same timeline; undefined when either is unknown. */
export function sameLockDatabase(a: LockDatabaseIdentity | undefined, b: LockDatabaseIdentity | undefined): boolean | undefined {
  if (!a || !b) return undefined;
  return a.systemIdentifier === b.systemIdentifier && a.timeline === b.timeline;
}

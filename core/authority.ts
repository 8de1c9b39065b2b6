/**
 * Which server of a PostgreSQL system is authoritative, judged on evidence
 * read from the servers themselves. A promotion moves a server to a higher
 * timeline, and the first term opened there (or `autonomy db stamp`) records
 * a promotion stamp above every epoch seen before; so among the servers of one
 * system (one system identifier), the one with the highest (timeline, stamp)
 * is the primary the cluster follows, and a writable server behind it is
 * superseded: the primary a promotion left behind (a zombie).
 */
export interface ServerStanding {
  /** pg_control_system().system_identifier: shared by a primary and its standbys. */
  readonly systemIdentifier: string;
  readonly timeline: number;
  /** The highest promotion stamp the server holds (0 without one). */
  readonly stamp: number;
}

/** Orders two standings of the same system: timeline first, then stamp. */
export function compareStanding(a: ServerStanding, b: ServerStanding): number {
  return a.timeline !== b.timeline ? a.timeline - b.timeline : a.stamp - b.stamp;
}

/** The display form, e.g. "7301…/tl2 stamp 12": for people and logs, never parsed. */
export function standingLabel(s: ServerStanding): string {
  return `${s.systemIdentifier}/tl${s.timeline}${s.stamp > 0 ? ` stamp ${s.stamp}` : ""}`;
}

/**
 * The highest standing seen per system, raised only by servers read directly
 * (never by what a peer says). Standbys count: a standby on timeline 3 shows
 * that a timeline-3 primary exists even before it is reachable.
 */
export class AuthorityTracker {
  private readonly highest = new Map<string, ServerStanding>();

  /** Records a reading; returns the previous highest when this one raised it. */
  observe(s: ServerStanding): { raised: boolean; previous: ServerStanding | undefined } {
    const top = this.highest.get(s.systemIdentifier);
    if (top && compareStanding(s, top) <= 0) return { raised: false, previous: top };
    this.highest.set(s.systemIdentifier, s);
    return { raised: true, previous: top };
  }

  highestOf(systemIdentifier: string): ServerStanding | undefined {
    return this.highest.get(systemIdentifier);
  }

  /** The standing that supersedes `s`, or undefined when `s` is the highest seen of its system. */
  supersededBy(s: ServerStanding | undefined): ServerStanding | undefined {
    if (!s) return undefined;
    const top = this.highest.get(s.systemIdentifier);
    return top && compareStanding(s, top) < 0 ? top : undefined;
  }

  /** Why `s` is superseded, in words; undefined when it is not. */
  supersededReason(s: ServerStanding | undefined): string | undefined {
    const by = this.supersededBy(s);
    if (!s || !by) return undefined;
    return by.timeline > s.timeline
      ? `server ${standingLabel(s)} is superseded: a promoted server of the same system is on timeline ${by.timeline}`
      : `server ${standingLabel(s)} is superseded by a later promotion stamp (${by.stamp}) on timeline ${by.timeline}`;
  }
}

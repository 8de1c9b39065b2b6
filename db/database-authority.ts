import type pg from "pg";
import { AuthorityTracker, standingLabel, type ServerStanding } from "../core/authority.js";
import { describeError } from "../core/errors.js";
import type { Logger } from "../core/log.js";
import { readServerStanding, type ServerReading } from "./authority.js";
import type { DatabaseTarget } from "./connect.js";
import type { SchemaName } from "./identifiers.js";
import { ServerScout, type HostReading } from "./server-scout.js";

/** The server a connection settled on, as read when it connected. */
export interface LockServer {
  readonly host: string;
  readonly reading: ServerReading;
}

export interface DatabaseAuthorityOptions {
  readonly target: DatabaseTarget;
  readonly schema: SchemaName;
  readonly clusterId: string;
  /** application_name of the scout's connections is "<nodeId>/scout". */
  readonly nodeId: string;
  readonly connectTimeoutMs: number;
  readonly log: Logger;
  /** A promoted server raised the standing of its system (the caller acts on it). */
  readonly changed: () => void;
}

/** A writable server that a promotion left behind, as seen at the last look. */
export interface SupersededServer {
  readonly host: HostReading & { readonly reachable: true };
  readonly by: ServerStanding;
  readonly reason: string;
}

/** SQLSTATEs of a server whose schema predates the promotion fence: it offers no evidence yet. */
const NO_SCHEMA_YET = new Set(["42883", "42P01", "3F000"]);

/**
 * Which server of --database-url is authoritative (core/authority.ts), for an
 * agent or the coordinator. It raises what it has seen only from servers it
 * reads itself: every host of a multi-host URL (each look), and every server
 * it connects to. It refuses connections to a superseded or fenced server,
 * says when a connection's own server is superseded, names the authoritative
 * writable host, and remembers the highest epoch any server showed, so the
 * first term on a promoted server opens above epochs its async replication lost.
 */
export class DatabaseAuthority {
  private readonly tracker = new AuthorityTracker();
  private readonly scout: ServerScout | undefined;
  private hosts: readonly HostReading[] = [];
  /** The highest epoch any server of each system confirmed, by system identifier. */
  private readonly highestEpoch = new Map<string, number>();
  private lastJudgement = "";

  constructor(private readonly o: DatabaseAuthorityOptions) {
    // One host offers nothing to compare; its own fence still shows at connect.
    this.scout =
      o.target.hosts.length > 1
        ? new ServerScout({ target: o.target, schema: o.schema, clusterId: o.clusterId, applicationName: `${o.nodeId}/scout`, connectTimeoutMs: o.connectTimeoutMs, statementTimeoutMs: 2_000 })
        : undefined;
  }

  /** The highest epoch any server of this system confirmed (a fresh initdb is another system and starts over). */
  highestEpochOf(systemIdentifier: string | undefined): number {
    return systemIdentifier === undefined ? 0 : (this.highestEpoch.get(systemIdentifier) ?? 0);
  }

  /** The highest epoch any server showed, whatever its system (for a one-off step such as a stamp). */
  get highestEpochSeen(): number {
    return Math.max(0, ...this.highestEpoch.values());
  }

  /** What each host of --database-url showed at the last look (empty with one host). */
  get hostReadings(): readonly HostReading[] {
    return this.hosts;
  }

  /** The highest standing seen for `systemIdentifier`. */
  authoritative(systemIdentifier: string): ServerStanding | undefined {
    return this.tracker.highestOf(systemIdentifier);
  }

  /** Looks at every host once; call each probe interval. */
  async look(): Promise<void> {
    if (!this.scout) return;
    this.hosts = await this.scout.look();
    for (const h of this.hosts) if (h.reachable) this.observe(h.server);
  }

  /**
   * connectDatabase's accept hook: reads the server's standing and refuses a
   * superseded or fenced one. `chosen` receives the reading of a server taken.
   */
  accept(chosen?: (server: LockServer) => void): (client: pg.Client, host: string) => Promise<string | undefined> {
    return async (client, host) => {
      let reading: ServerReading;
      try {
        reading = await readServerStanding(client, this.o.schema, this.o.clusterId);
      } catch (err) {
        if (NO_SCHEMA_YET.has((err as { code?: string }).code ?? "")) return undefined;
        throw err;
      }
      this.observe(reading);
      const refusal = this.refusal(reading);
      if (!refusal) chosen?.({ host, reading });
      return refusal;
    };
  }

  /** The reachable, writable, unfenced host that no other server supersedes, at the last look. */
  authoritativeHost(): (HostReading & { readonly reachable: true }) | undefined {
    return this.hosts.find((h): h is HostReading & { reachable: true } => h.reachable && !h.server.inRecovery && this.refusal(h.server) === undefined);
  }

  /** Writable, not yet fenced servers behind the highest standing of their system, at the last look. */
  supersededServers(): SupersededServer[] {
    const out: SupersededServer[] = [];
    for (const h of this.hosts) {
      if (!h.reachable || h.server.inRecovery || h.server.fenced) continue;
      const reason = this.refusal(h.server);
      const by = this.tracker.supersededBy(h.server);
      if (reason && by) out.push({ host: h, by, reason });
    }
    return out;
  }

  /** Why a server with this standing is superseded (from a peer's report, say), or undefined. */
  supersededReason(standing: ServerStanding | undefined): string | undefined {
    return this.tracker.supersededReason(standing);
  }

  /** The scout's own connection to `url`, for a statement judged safe on that server. */
  clientFor(url: string): Promise<pg.Client> {
    if (!this.scout) throw new Error("no scout: --database-url names one server");
    return this.scout.clientFor(url);
  }

  /** The newest reading of a connection's server: the scout's last look at that host (a stamp may have landed since), else the one taken at connect. */
  freshReading(server: LockServer): ServerReading {
    const fresh = this.hosts.find((h) => h.host === server.host && h.reachable && h.server.systemIdentifier === server.reading.systemIdentifier);
    return fresh?.reachable ? fresh.server : server.reading;
  }

  /** Why no term may be held on the lock session's server, or undefined. */
  lockServerRefusal(server: LockServer | undefined): string | undefined {
    if (!server) return undefined;
    const reading = this.freshReading(server);
    const why = this.refusal(reading);
    if (why && why !== this.lastJudgement) this.o.log.warn({ host: server.host, server: standingLabel(reading) }, `lock database refused: ${why}`);
    this.lastJudgement = why ?? "";
    return why;
  }

  private refusal(reading: ServerReading): string | undefined {
    if (reading.fenced) return `fenced as superseded: ${reading.fenced}`;
    if (reading.inRecovery) return undefined; // a standby opens no term anyway
    const by = this.tracker.supersededBy(reading);
    if (!by) return undefined;
    // A higher timeline supersedes for good. A higher stamp on the same
    // timeline (two servers promoted onto one timeline number, a fork) only
    // while that server is a writable primary now: otherwise the failover
    // engine has moved on from it, and refusing the one it chose would leave
    // no writable server at all.
    if (by.timeline === reading.timeline && !this.writableNow(by)) return undefined;
    return this.tracker.supersededReason(reading);
  }

  private writableNow(s: ServerStanding): boolean {
    return this.hosts.some(
      (h) => h.reachable && !h.server.inRecovery && !h.server.fenced && h.server.systemIdentifier === s.systemIdentifier && h.server.timeline === s.timeline && h.server.stamp >= s.stamp,
    );
  }

  private observe(reading: ServerReading): void {
    if (reading.confirmedEpoch > this.highestEpochOf(reading.systemIdentifier)) this.highestEpoch.set(reading.systemIdentifier, reading.confirmedEpoch);
    const { raised, previous } = this.tracker.observe(reading);
    if (raised && previous) {
      this.o.log.warn({ from: standingLabel(previous), to: standingLabel(reading) }, `a promoted server supersedes ${standingLabel(previous)}: now following ${standingLabel(reading)}`);
      this.o.changed();
    }
  }

  async close(): Promise<void> {
    await this.scout?.close().catch((err: unknown) => this.o.log.debug({ err: describeError(err) }, "closing the scout failed"));
  }
}

import { spawn } from "node:child_process";
import { compareStanding, standingLabel, type ServerStanding } from "../../core/authority.js";
import type { Clock } from "../../core/clock.js";
import { describeError } from "../../core/errors.js";
import type { Logger } from "../../core/log.js";
import type { LeaderView, NodeReport } from "../../core/model.js";
import { fenceSupersededServer, type PromotionRecord } from "../../db/authority.js";
import { redact } from "../../db/connect.js";
import type { DatabaseAuthority, SupersededServer } from "../../db/database-authority.js";
import type { SchemaName } from "../../db/identifiers.js";
import type { PrimaryPool } from "../../db/primary-pool.js";
import type { HostReading } from "../../db/server-scout.js";
import { AuditType } from "../audit/audit-event.js";
import type { AuditLog } from "../audit/audit-log.js";
import type { DatabaseTruth } from "../view/cluster-view.js";

/** What is done to a superseded primary besides holding its nodes and fencing it in our schema. */
export type ServerFence = { readonly kind: "none" } | { readonly kind: "read-only" } | { readonly kind: "exec"; readonly command: string };

export function parseServerFence(raw: string): ServerFence {
  if (raw === "none" || raw === "") return { kind: "none" };
  if (raw === "read-only") return { kind: "read-only" };
  if (raw.startsWith("exec:") && raw.length > 5) return { kind: "exec", command: raw.slice(5) };
  throw new Error(`--fence-superseded-server "${raw}" is not one of none, read-only, exec:/path/to/script`);
}

/** The last promotion the coordinator measured: seed 004 §5's RTO. */
export interface MeasuredPromotion {
  readonly standing: ServerStanding;
  readonly previous: ServerStanding;
  /** When the promoted server was first seen (wall clock). */
  readonly seenAt: Date;
  /** When writes stopped being usable before it (wall clock). */
  readonly lostAt: Date;
  /** Primary lost → first Write-Ready term on the promoted server; undefined until that term. */
  readonly rtoMs: number | undefined;
  readonly writer: string | undefined;
}

export interface DatabaseFailoverDeps {
  readonly authority: DatabaseAuthority;
  readonly pool: PrimaryPool;
  readonly schema: SchemaName;
  readonly clusterId: string;
  readonly audit: AuditLog;
  readonly clock: Clock;
  readonly log: Logger;
  /** Fence a superseded primary in our schema and hold its nodes (on by default). */
  readonly contain: boolean;
  readonly serverFence: ServerFence;
  /** The database moved or a promotion was seen: read it again and re-evaluate. */
  readonly changed: () => void;
  /**
   * Whether this coordinator acts (the active one of its tier): a standby
   * follows the authoritative primary for its reads but contains nothing
   * (what a containment started, it finishes and audits). Default: always.
   */
  readonly acting?: () => boolean;
}

/**
 * The coordinator's part in a PostgreSQL failover. Each look at every server
 * of --database-url: follows the authoritative primary with the truth pool,
 * contains a primary that a promotion left behind (fence_superseded, and the
 * optional server fence), and notices a promotion so its RTO can be measured
 * (primary lost → first Write-Ready term on the promoted server, audited as
 * ha.database.promoted). Which node is on a superseded server is judged here
 * too, so the engine can hold it.
 */
export class DatabaseFailover {
  private readonly contained = new Set<string>();
  private readonly tops = new Map<string, ServerStanding>();
  private writerLostAtMs: number | undefined;
  private pending: { standing: ServerStanding; previous: ServerStanding; seenAt: Date; seenAtMs: number; lostAtMs: number } | undefined;
  private last: MeasuredPromotion | undefined;

  constructor(private readonly d: DatabaseFailoverDeps) {}

  /** Looks every `intervalMs` until `signal` aborts. */
  async run(intervalMs: number, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.look().catch((err: unknown) => this.d.log.warn({ err: describeError(err) }, "looking at the database servers failed"));
      await this.d.clock.sleep(intervalMs, signal).catch(() => undefined);
    }
  }

  /** One look: follow, notice promotions, contain. */
  async look(): Promise<void> {
    const { authority, pool, log } = this.d;
    await authority.look();
    const primary = authority.authoritativeHost();
    if (primary) {
      this.noteServer(primary.server, primary.host);
      if (pool.follow(primary.url)) {
        log.warn({ host: primary.host, server: standingLabel(primary.server) }, `following the authoritative primary: ${redact(primary.url)}`);
        this.d.changed();
      }
    }
    if (this.d.contain && (this.d.acting?.() ?? true)) for (const s of authority.supersededServers()) await this.contain(s);
  }

  /**
   * Why the lock database a node reports is superseded (so the node must
   * hold), or undefined. A report is a claim: only its timeline is weighed
   * against what the coordinator read itself.
   */
  nodeSuperseded(report: NodeReport): string | undefined {
    const db = report.lockDatabase;
    if (!db || !report.lockDatabaseWritable) return undefined;
    return this.timelineSuperseded(db.systemIdentifier, db.timeline);
  }

  /** Why a server of this system on this timeline is superseded (a promotion moved past it), or undefined. */
  timelineSuperseded(systemIdentifier: string, timeline: number): string | undefined {
    const top = this.d.authority.authoritative(systemIdentifier);
    return top && top.timeline > timeline ? `the server on timeline ${timeline} is superseded by a promotion to timeline ${top.timeline}` : undefined;
  }

  /** The highest epoch any server of --database-url confirmed (a zombie's included): the next term goes above it. */
  highestEpochOf(systemIdentifier: string | undefined): number {
    return this.d.authority.highestEpochOf(systemIdentifier);
  }

  /** The servers as last seen, for status and detection. */
  get servers(): readonly HostReading[] {
    return this.d.authority.hostReadings;
  }

  get lastPromotion(): MeasuredPromotion | undefined {
    return this.last;
  }

  /** The promotion record the authoritative server holds (region, actor), if any. */
  get promotionRecord(): PromotionRecord | undefined {
    const primary = this.d.authority.authoritativeHost();
    return primary?.server.lastPromotion;
  }

  /**
   * Called on every evaluation: tracks when writes stopped being usable and,
   * once a Write-Ready leader holds a term on the promoted server, audits the
   * promotion with its RTO.
   */
  observe(leader: LeaderView, db: DatabaseTruth | undefined, nowMs: number): void {
    // With one host (a DNS name or VIP that follows the primary) the truth read is the only look.
    if (db?.reachable && db.identity && !db.identity.inRecovery) {
      const top = this.tops.get(db.identity.systemIdentifier);
      this.noteServer({ systemIdentifier: db.identity.systemIdentifier, timeline: db.identity.timeline, stamp: top?.timeline === db.identity.timeline ? top.stamp : 0 }, this.d.pool.target);
    }
    const usable = leader.writeReady && db?.reachable === true;
    if (!usable) {
      this.writerLostAtMs ??= nowMs;
      return;
    }
    const p = this.pending;
    if (p && db?.identity && db.identity.systemIdentifier === p.standing.systemIdentifier && db.identity.timeline >= p.standing.timeline) {
      this.pending = undefined;
      const rtoMs = Math.round(nowMs - p.lostAtMs);
      const lostAt = new Date(p.seenAt.getTime() - (p.seenAtMs - p.lostAtMs));
      this.last = { standing: p.standing, previous: p.previous, seenAt: p.seenAt, lostAt, rtoMs, writer: leader.holderId };
      const message = `database promoted: ${standingLabel(p.standing)} supersedes ${standingLabel(p.previous)}; ${leader.holderId} is Write-Ready with epoch ${leader.epoch}, ${rtoMs}ms after writes stopped`;
      this.d.log.warn({ rto_ms: rtoMs, writer: leader.holderId, epoch: leader.epoch }, message);
      this.audit({
        type: AuditType.DatabasePromoted,
        node_id: leader.holderId,
        epoch: leader.epoch,
        message,
        evidence: {
          system_identifier: p.standing.systemIdentifier,
          timeline: p.standing.timeline,
          stamp: p.standing.stamp,
          previous_timeline: p.previous.timeline,
          primary_lost_at: lostAt.toISOString(),
          promotion_seen_at: p.seenAt.toISOString(),
          rto_ms: rtoMs,
        },
      });
    }
    this.writerLostAtMs = undefined;
  }

  /** Notes the primary's standing; a higher timeline of the same system is a promotion. */
  private noteServer(s: ServerStanding, host: string): void {
    const before = this.tops.get(s.systemIdentifier);
    if (before && compareStanding(s, before) <= 0) return;
    this.tops.set(s.systemIdentifier, { systemIdentifier: s.systemIdentifier, timeline: s.timeline, stamp: s.stamp });
    if (!before || before.timeline === s.timeline) return; // first sight, or a stamp on the same server
    const nowMs = this.d.clock.monotonicMs();
    this.pending = { standing: s, previous: before, seenAt: this.d.clock.now(), seenAtMs: nowMs, lostAtMs: this.writerLostAtMs ?? nowMs };
    this.last = { standing: s, previous: before, seenAt: this.pending.seenAt, lostAt: new Date(this.pending.seenAt.getTime() - (nowMs - this.pending.lostAtMs)), rtoMs: undefined, writer: undefined };
    this.d.log.warn({ host, server: standingLabel(s), previous: standingLabel(before) }, `promotion seen: ${standingLabel(s)} supersedes ${standingLabel(before)}`);
    this.d.changed();
  }

  /** Fences a superseded primary (audited once per server), then the configured server fence. */
  private async contain(s: SupersededServer): Promise<void> {
    const key = `${s.host.url}|${standingLabel(s.host.server)}`;
    if (this.contained.has(key)) return;
    this.contained.add(key);
    const { log } = this.d;
    let fenced: boolean | string;
    try {
      fenced = await fenceSupersededServer(await this.d.authority.clientFor(s.host.url), this.d.schema, s.by, s.reason, "autonomy-coordinator");
    } catch (err) {
      fenced = describeError(err);
      this.contained.delete(key); // try again at the next look
    }
    const action = typeof fenced === "string" ? "none" : await this.fenceServer(s);
    const what = `${s.host.host} (${standingLabel(s.host.server)})`;
    const message =
      typeof fenced === "string"
        ? `containment of superseded primary ${what} failed: ${fenced}`
        : `contained superseded primary ${what}: no term opens there and assert_epoch refuses every epoch; nodes on it are held until they reach ${standingLabel(s.by)}`;
    log.warn({ host: s.host.host, server: standingLabel(s.host.server), by: standingLabel(s.by), server_fence: action }, message);
    this.audit({
      type: AuditType.DatabaseContained,
      message,
      reason: s.reason,
      evidence: {
        host: s.host.host,
        system_identifier: s.host.server.systemIdentifier,
        timeline: s.host.server.timeline,
        stamp: s.host.server.stamp,
        superseded_by_timeline: s.by.timeline,
        superseded_by_stamp: s.by.stamp,
        fence_written: fenced === true,
        server_fence: action,
      },
    });
  }

  /** The optional fence of the server itself; returns what was done, for the audit. */
  private async fenceServer(s: SupersededServer): Promise<string> {
    const fence = this.d.serverFence;
    try {
      if (fence.kind === "read-only") {
        const c = await this.d.authority.clientFor(s.host.url);
        await c.query("ALTER SYSTEM SET default_transaction_read_only = on");
        await c.query("SELECT pg_reload_conf()");
        const r = await c.query<{ n: string }>(
          `SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity
            WHERE pid <> pg_backend_pid() AND backend_type = 'client backend' AND datname IS NOT NULL`,
        );
        return `read-only: default_transaction_read_only = on, ${r.rows[0]?.n ?? 0} client sessions ended`;
      }
      if (fence.kind === "exec") return await this.runFenceCommand(fence.command, s);
      return "none";
    } catch (err) {
      return `${fence.kind} failed: ${describeError(err)}`;
    }
  }

  private runFenceCommand(command: string, s: SupersededServer): Promise<string> {
    return new Promise((resolve) => {
      const child = spawn(command, [], {
        stdio: "ignore",
        env: {
          ...process.env,
          AUTONOMY_CLUSTER_ID: this.d.clusterId,
          AUTONOMY_SUPERSEDED_HOST: s.host.host,
          AUTONOMY_SUPERSEDED_SERVER: standingLabel(s.host.server),
          AUTONOMY_AUTHORITATIVE_SERVER: standingLabel(s.by),
        },
      });
      const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
      child.once("error", (err) => {
        clearTimeout(timer);
        resolve(`exec ${command} failed: ${err.message}`);
      });
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        resolve(`exec ${command}: ${signal ? `killed by ${signal}` : `exit ${code}`}`);
      });
    });
  }

  private audit(input: Parameters<AuditLog["append"]>[0]): void {
    this.d.audit.append(input).catch((err: unknown) => this.d.log.error({ err: describeError(err), type: input.type }, "audit write failed"));
  }
}

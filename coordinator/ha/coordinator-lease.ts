import pg from "pg";
import type { Clock } from "../../core/clock.js";
import { describeError } from "../../core/errors.js";
import type { Logger } from "../../core/log.js";
import { acquireCoordinatorLockSql, openCoordinatorTerm, readCoordinatorTerm, type CoordinatorTerm } from "../../db/coordinator-term.js";
import type { SchemaName } from "../../db/identifiers.js";
import type { Queryable } from "../../db/side-connection.js";

/** This coordinator's part in the tier, as status and /readyz show it. */
export interface CoordinatorRole {
  readonly role: "active" | "standby";
  /** This coordinator's term while active; the active one's term seen from a standby (0: none yet). */
  readonly term: number;
  readonly coordinatorId: string;
  /** The active coordinator's URL as it advertised it ("" when none is known). */
  readonly activeUrl: string;
  readonly activeId: string;
}

export interface CoordinatorLeaseOptions {
  readonly coordinatorId: string;
  /** The URL agents and the CLI reach this coordinator at, recorded with its term. */
  readonly advertiseUrl: string;
  readonly region: string;
  readonly schema: SchemaName;
  /** The authoritative primary's URL now (it moves with a database failover). */
  readonly databaseUrl: () => string;
  /** Reads of the active coordinator's record, through the coordinator's pool. */
  readonly pool: Queryable;
  /** How often the active coordinator proves its lock session alive (and a standby re-reads who is active). */
  readonly renewMs: number;
  /**
   * The active coordinator stops acting when its last successful renewal is
   * older than this; the database ends a lock session idle for takeoverMs,
   * so a paused active coordinator's lock passes on, and lease < takeover
   * means it has stopped acting before that.
   */
  readonly leaseMs: number;
  readonly takeoverMs: number;
  readonly clock: Clock;
  readonly log: Logger;
  /** Called on every change of role (and of the known active coordinator). */
  readonly changed: (role: CoordinatorRole) => void;
}

/**
 * The election among coordinators: each holds one dedicated session that
 * waits on the coordinator lock (pg_advisory_lock blocks, so the lock passes
 * the moment its holder's session ends: a SIGKILLed coordinator is replaced
 * in milliseconds). The holder opens a term and proves its session alive
 * every renewMs; a renewal that fails, or none for leaseMs, makes it a
 * standby again at once. Agents obey only commands stamped with the term
 * that the database says holds the lock, so a deposed coordinator that has
 * not noticed yet is refused, not obeyed.
 */
export class CoordinatorLease {
  private client: pg.Client | undefined;
  private state: CoordinatorRole;
  private lastRenewedMs = Number.NEGATIVE_INFINITY;
  private highestTerm = 0;
  private readonly stopped = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(private readonly options: CoordinatorLeaseOptions) {
    this.state = { role: "standby", term: 0, coordinatorId: options.coordinatorId, activeUrl: "", activeId: "" };
  }

  /** Active and renewed within the lease: the only state in which this coordinator may act. */
  get active(): boolean {
    return this.state.role === "active" && this.options.clock.monotonicMs() - this.lastRenewedMs < this.options.leaseMs;
  }

  get role(): CoordinatorRole {
    return this.state;
  }

  /** The term commands are stamped with (0 when not active). */
  get term(): number {
    return this.state.role === "active" ? this.state.term : 0;
  }

  start(): void {
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped.abort();
    const c = this.client;
    this.client = undefined;
    // Ending the session releases the lock for a standby at once.
    if (c) await endQuickly(c);
    await this.loop;
  }

  private async run(): Promise<void> {
    const { clock, log } = this.options;
    const standbyReads = this.followActive();
    while (!this.stopped.signal.aborted) {
      try {
        await this.campaign();
      } catch (err) {
        if (!this.stopped.signal.aborted) log.warn({ err: describeError(err) }, "coordinator lock session failed; trying again");
      }
      this.stepDown();
      // Ending the session releases the lock (if the server still has it) for a standby.
      if (this.client) await endQuickly(this.client);
      this.client = undefined;
      await clock.sleep(this.options.renewMs, this.stopped.signal).catch(() => undefined);
    }
    await standbyReads;
  }

  /** One lock session: wait for the lock, open a term, renew until something fails. */
  private async campaign(): Promise<void> {
    const { clock, log, schema, takeoverMs } = this.options;
    const url = this.options.databaseUrl();
    const client = new pg.Client({ connectionString: url, application_name: `autonomy-coordinator/${this.options.coordinatorId}`, connectionTimeoutMillis: 3_000, keepAlive: true, keepAliveInitialDelayMillis: 1_000 });
    client.on("error", (err) => log.debug({ err: err.message }, "coordinator lock session error"));
    this.client = client;
    await client.connect();
    // A session that stops renewing (a paused or partitioned coordinator)
    // is ended by the server, which releases the lock to a standby.
    await client.query(`SET idle_session_timeout = ${Math.round(takeoverMs)}`).catch((err: { code?: string }) => {
      // 42704: PostgreSQL before 14 has no idle_session_timeout.
      if (err.code !== "42704") throw err;
      log.warn("this PostgreSQL has no idle_session_timeout (before 14): a hung active coordinator is replaced only once TCP keepalive ends its session");
    });
    // Waiting on a server that a promotion left behind would wait forever.
    const moved = setInterval(() => {
      if (this.options.databaseUrl() !== url) void endQuickly(client);
    }, this.options.renewMs);
    try {
      await client.query(acquireCoordinatorLockSql, [schema.name]);
    } finally {
      clearInterval(moved);
    }
    if (this.stopped.signal.aborted) return;
    const term = await openCoordinatorTerm(client, schema, this.options.coordinatorId, this.options.advertiseUrl, this.options.region, this.highestTerm);
    this.highestTerm = Math.max(this.highestTerm, term);
    this.lastRenewedMs = clock.monotonicMs();
    this.set({ role: "active", term, coordinatorId: this.options.coordinatorId, activeUrl: this.options.advertiseUrl, activeId: this.options.coordinatorId });
    log.info({ term, url: this.options.advertiseUrl }, `this coordinator is now active (coordinator term ${term})`);
    while (!this.stopped.signal.aborted) {
      await clock.sleep(this.options.renewMs, this.stopped.signal).catch(() => undefined);
      if (this.stopped.signal.aborted) return;
      if (this.options.databaseUrl() !== url) {
        log.warn("the authoritative primary moved; taking the coordinator lock there");
        return;
      }
      const started = clock.monotonicMs();
      await withTimeout(client.query("SELECT 1"), this.options.leaseMs, "the coordinator lock session did not answer within the lease");
      this.lastRenewedMs = started;
    }
  }

  private stepDown(): void {
    if (this.state.role !== "active") return;
    this.options.log.warn({ term: this.state.term }, `this coordinator is a standby again (coordinator term ${this.state.term} ended)`);
    this.set({ role: "standby", term: this.state.term, coordinatorId: this.options.coordinatorId, activeUrl: "", activeId: "" });
  }

  /** While standby: who is active, for status and for redirecting mutations. */
  private async followActive(): Promise<void> {
    while (!this.stopped.signal.aborted) {
      if (this.state.role === "standby") {
        const seen = await readCoordinatorTerm(this.options.pool, this.options.schema).catch(() => undefined);
        await this.noteActive(seen);
      }
      await this.options.clock.sleep(this.options.renewMs * 2, this.stopped.signal).catch(() => undefined);
    }
  }

  /** Re-reads who is active now (a standby asked to act says where to go). */
  async refreshActive(): Promise<CoordinatorRole> {
    if (this.state.role === "standby") await this.noteActive(await readCoordinatorTerm(this.options.pool, this.options.schema).catch(() => undefined));
    return this.state;
  }

  private async noteActive(seen: CoordinatorTerm | undefined): Promise<void> {
    if (this.state.role !== "standby") return;
    if (seen) this.highestTerm = Math.max(this.highestTerm, seen.term);
    const live = seen?.live ? seen : undefined;
    const next: CoordinatorRole = { role: "standby", term: live?.term ?? 0, coordinatorId: this.options.coordinatorId, activeUrl: live?.url ?? "", activeId: live?.coordinatorId ?? "" };
    if (next.term !== this.state.term || next.activeUrl !== this.state.activeUrl) this.set(next);
  }

  private set(role: CoordinatorRole): void {
    this.state = role;
    this.options.changed(role);
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(what)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Ends a session without waiting on a peer that may never answer (a cut network). */
async function endQuickly(client: pg.Client): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([client.end().catch(() => undefined), new Promise<void>((resolve) => (timer = setTimeout(resolve, 500)))]);
  clearTimeout(timer);
  // pg keeps its socket on the Client as `connection.stream`; a hung end() leaves it to be destroyed.
  (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
}

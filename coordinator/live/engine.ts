import type { Clock } from "../../core/clock.js";
import { ErrorCode, HaError, describeError } from "../../core/errors.js";
import type { CoordinatorState } from "../../db/coordinator-state.js";
import type { Logger } from "../../core/log.js";
import { noLeader, type LeaderView } from "../../core/model.js";
import type { EpochRow } from "../../db/leadership.js";
import { recordAfterActing, type AuditLog } from "../audit/audit-log.js";
import { AuditType } from "../audit/audit-event.js";
import type { CoordinatorPolicy } from "../config.js";
import { decide, type Decision } from "../decide/decide.js";
import { detectSplitBrain, type SplitBrainFinding } from "../detect/split-brain.js";
import { detectIntruders, type IntruderFinding } from "../detect/intruder.js";
import { highestEpochKnown, leaderOf, type ClusterView, type Designation, type NodeState, confirmedByDatabase } from "../view/cluster-view.js";
import { chooseSuccessor } from "../decide/successor.js";
import { leaseFinding, leaseFindings, type LeaseFinding } from "../detect/lease.js";
import type { DatabaseTruthPoller } from "./db-truth.js";
import type { EpochFloor } from "./epoch-floor.js";
import { leaderChange, type LeaderEventLog } from "../../core/leader-event-log.js";
import type { NodeSessions } from "./node-sessions.js";
import type { DatabaseFailover } from "./database-failover.js";
import { clusterReadiness, type ClusterReadiness } from "./cluster-readiness.js";
import type { Requester } from "./operation-context.js";
import { notActive, soleCoordinator, type CoordinatorTier } from "../ha/tier.js";

export interface EngineDeps {
  readonly policy: CoordinatorPolicy;
  readonly sessions: NodeSessions;
  readonly truth: DatabaseTruthPoller;
  readonly audit: AuditLog;
  readonly events: LeaderEventLog;
  readonly clock: Clock;
  readonly log: Logger;
  /** Keeps the epoch floor in the lock database (loaded before the engine starts). */
  readonly floor: EpochFloor;
  /** Runs an automatic split-brain recovery through this engine; without it, none runs. */
  readonly recover?: AutoRecover;
  /** The engine stops deciding when this aborts. */
  readonly signal?: AbortSignal;
  /** The servers of --database-url: which is authoritative, promotions, containment. */
  readonly databases?: DatabaseFailover;
  /** The host the truth is read through now. */
  readonly primaryHost?: () => string;
  /** Where maintenance mode and the manual-reconcile hold are kept (migration 6), and what it held at start. */
  readonly durable?: DurableState;
  /**
   * Starts as a standby of a coordinator tier: it keeps the view, detects and
   * publishes leader changes for the reads it serves, but orders nothing and
   * audits nothing until activate(). Default: it acts from the start.
   */
  readonly standby?: boolean;
  /** The tier this engine's coordinator belongs to (for the refusal a standby gives). */
  readonly tier?: CoordinatorTier;
  /** Whether this coordinator's hold on the tier's lock is still proved (renewed within its lease). */
  readonly leaseValid?: () => boolean;
}

/** The coordinator's state that outlives it, in the lock database. */
export interface DurableState {
  readonly loaded: CoordinatorState;
  writeMaintenance(on: boolean, by: string, reason: string): Promise<void>;
  writeReconcileHold(on: boolean, by: string, reason: string): Promise<void>;
  /** An automatic failover was ordered now (the cooldown a later coordinator honours). */
  writeAutomaticFailover(): Promise<void>;
  /** The successor queued on the lock, "" when none. */
  writeDesignation(nodeId: string): Promise<void>;
  /** The highest epoch the shared audit records a leader change for, and the terms of leader_epochs above it, oldest first. */
  termsNotAudited(): Promise<{ auditedEpoch: number; terms: readonly EpochRow[] }>;
}

export interface EngineCounters {
  readonly splitBrainDetections: number;
  readonly failovers: { readonly planned: number; readonly automatic: number; readonly recovery: number };
  readonly intruders: { readonly detected: number; readonly terminated: number };
}

/** Who changed the coordinator's state, for the audit event the change writes. */
export interface Actor extends Requester {
  readonly request_id?: string;
}

export interface FindingState {
  readonly finding: SplitBrainFinding;
  /** When the current split-brain was first detected (wall clock); undefined when none. */
  readonly detectedAt: Date | undefined;
}

/** Runs an automatic split-brain recovery of `target` as an operation of `engine`. */
export type AutoRecover = (engine: Engine, target: string, reason: string) => Promise<void>;

/**
 * The live loop: builds the view, runs detection on every report and
 * database read, publishes leader and split-brain changes, and applies the
 * pure decisions. It acts thinly: each decision becomes one command, one SQL
 * statement or one audit event.
 *
 * Its state changes only through the named transitions below (setMaintenance,
 * setReconcileHold, failoverCompleted, releaseDesignation, …), each of which
 * writes its audit event; nothing outside assigns it.
 */
export class Engine {
  private maintenance = false;
  private reconcileHold = false;
  /** The highest epoch confirmed in the lock database; only database reads raise it, never reports. */
  private epochFloor = 0;
  private readonly count = { splitBrainDetections: 0, failovers: { planned: 0, automatic: 0, recovery: 0 }, intruders: { detected: 0, terminated: 0 } };
  /** The lease each node was last warned about (detect/lease.ts), so a finding is logged once. */
  private readonly leaseWarned = new Map<string, number>();

  private operation: string | undefined;
  private operations: Promise<unknown> = Promise.resolve();
  private lastAutomaticFailoverMs: number | undefined;
  private leaderlessSinceMs: number | undefined;
  private pendingCampaign: { nodeId: string; sentAtMs: number } | undefined;
  private designation: Designation | undefined;
  private findingState: FindingState;
  private readonly holdSent = new Set<string>();
  /** A cleared manual-reconcile hold the database does not know about yet (retried on each evaluation). */
  private unrecordedHoldClear: Actor | undefined;
  /**
   * The cold start's settle (CoordinatorPolicy.settleMs): while nobody leads,
   * the nodes that report are held, and the best of them is ordered to lead
   * when it ends, so the preferred node leads, not the first to connect.
   */
  private readonly settle: { startedMs: number | undefined; held: Set<string>; state: "open" | "settling" | "ordering" | "done" } = {
    startedMs: undefined,
    held: new Set(),
    state: "open",
  };
  /** Nodes held because their lock database was superseded; released once they reach the authoritative one. */
  private readonly supersededHeld = new Set<string>();
  private applying = false;
  /** A report-driven evaluation due on the next turn of the event loop (one for a burst of reports). */
  private evaluation: NodeJS.Immediate | undefined;
  private again = false;
  private stopped = false;
  /** The active coordinator of its tier acts; a standby only watches (EngineDeps.standby). */
  private acting: boolean;
  /** The last term audited as ha.leader.changed (by this coordinator, or found in the audit on taking over). */
  private audited: LeaderView = noLeader;
  /** Epochs whose leader change this engine audited (recent ones), so taking over records none twice. */
  private readonly auditedEpochs = new Set<number>();
  /**
   * Whether the audit's record of terms has been read since this engine began
   * to act: until then no term is audited, so a coordinator that takes over
   * does not record again the term the last one recorded.
   */
  private termsCaughtUp: boolean;
  private lastReasons = "";
  private currentIntruders: IntruderFinding[] = [];
  /** Intruding sessions already audited, by pid and backend start. */
  private readonly intrudersSeen = new Set<string>();
  /** Intruding sessions (sessionKey) this coordinator ended. */
  private readonly intrudersEnded = new Set<string>();

  constructor(private readonly deps: EngineDeps) {
    this.epochFloor = deps.floor.value;
    this.acting = deps.standby !== true;
    this.termsCaughtUp = deps.standby !== true;
    // A restarted coordinator continues where the last one stopped, without auditing it again.
    if (deps.durable) this.continueFrom(deps.durable.loaded);
    this.findingState = { finding: detectSplitBrain(this.view(), deps.policy, deps.clock.monotonicMs()), detectedAt: undefined };
    deps.signal?.addEventListener(
      "abort",
      () => {
        this.stopped = true;
        clearImmediate(this.evaluation);
      },
      { once: true },
    );
    if (deps.signal?.aborted) this.stopped = true;
    deps.sessions.attach({
      report: (nodeId, material) => this.onReport(nodeId, material),
      connection: (nodeId, connected) => this.onConnection(nodeId, connected),
      audit: (input) => this.auditLater(input),
      confirmedEpoch: () => this.confirmedEpoch(),
    });
    deps.truth.onRead(() => this.evaluate());
  }

  /** Whether this engine acts (the active coordinator) rather than only watching (a standby). */
  get isActing(): boolean {
    return this.acting;
  }

  /**
   * Acting, and the tier's lease still valid: a coordinator that was paused
   * past its lease stops at once, before its lock session's failure makes it
   * a standby (EngineDeps.leaseValid).
   */
  private canAct(): boolean {
    return this.acting && (this.deps.leaseValid?.() ?? true);
  }

  /**
   * This coordinator became the active one of its tier: it continues from the
   * state the last active one recorded (maintenance, the manual-reconcile
   * hold, the cooldown, the designated successor) and starts acting.
   */
  activate(state: CoordinatorState): void {
    this.continueFrom(state);
    this.acting = true;
    this.termsCaughtUp = false;
    this.deps.log.info("engine active: deciding and ordering");
    void this.catchUpTerms();
    this.evaluate();
  }

  /** This coordinator is a standby (again): it stops acting at once and drops what it had in flight. */
  deactivate(): void {
    if (!this.acting) return;
    this.acting = false;
    this.pendingCampaign = undefined;
    if (this.designation?.active) this.designation = { ...this.designation, active: false, endedAtMs: this.deps.clock.monotonicMs() };
    this.settle.state = "open";
    this.settle.startedMs = undefined;
    this.settle.held.clear();
    this.holdSent.clear();
    this.supersededHeld.clear();
    this.deps.log.warn("engine standby: no decisions, orders or audit until this coordinator is active again");
  }

  /** A standby shows what the active coordinator records (maintenance, the hold) in the reads it serves. */
  followDurable(state: CoordinatorState): void {
    if (this.acting) return;
    this.maintenance = state.maintenance;
    this.reconcileHold = state.reconcileHold;
  }

  private continueFrom(state: CoordinatorState): void {
    const { log, clock, policy } = this.deps;
    const now = clock.monotonicMs();
    if (state.maintenance && !this.maintenance) {
      log.warn({ by: state.maintenanceBy, reason: state.maintenanceReason }, `maintenance mode is on (set by ${state.maintenanceBy}: ${state.maintenanceReason}); automatic actions stay paused`);
    }
    if (state.reconcileHold && !this.reconcileHold) {
      log.warn({ by: state.reconcileHoldBy, reason: state.reconcileHoldReason }, `the manual-reconcile hold is on (set by ${state.reconcileHoldBy}: ${state.reconcileHoldReason}); nobody campaigns until a failover names a node`);
    }
    this.maintenance = state.maintenance;
    this.reconcileHold = state.reconcileHold;
    if (state.lastAutomaticFailoverAgeMs !== undefined) this.lastAutomaticFailoverMs = now - state.lastAutomaticFailoverAgeMs;
    // The successor the last coordinator queued is still waiting on the lock for the rest of its wait.
    const age = state.designatedAgeMs;
    if (state.designatedSuccessor && age !== undefined && age < policy.designationWaitMs) {
      this.designation = { nodeId: state.designatedSuccessor, sentAtMs: now - age, waitMs: policy.designationWaitMs, active: true, endedAtMs: undefined };
      log.info({ node_id: state.designatedSuccessor }, `designated successor ${state.designatedSuccessor} is queued on the lock (designated ${Math.round(age)}ms ago)`);
    }
  }

  /** The servers of --database-url, when the engine was given them. */
  get databases(): DatabaseFailover | undefined {
    return this.deps.databases;
  }

  /** Seed 004 §5's RTO check for /readyz and status. */
  clusterReadiness(): ClusterReadiness {
    return clusterReadiness(this.view(), this.leader(), this.deps.databases, this.deps.primaryHost?.() ?? "");
  }

  /** Counts for /metrics: a copy, never the engine's own. */
  get counters(): EngineCounters {
    const c = this.count;
    return { splitBrainDetections: c.splitBrainDetections, failovers: { ...c.failovers }, intruders: { ...c.intruders } };
  }

  /** Nodes whose --lease is not below --failure-timeout (detect/lease.ts). */
  leaseFindings(): LeaseFinding[] {
    return leaseFindings(this.deps.sessions.nodes(), this.deps.policy);
  }

  /**
   * Maintenance mode on or off, audited (ha.maintenance.paused/resumed).
   * Refused before anything changes when the audit log cannot be written.
   */
  async setMaintenance(paused: boolean, who: Actor): Promise<{ paused: boolean; message: string; notAudited: string | undefined }> {
    if (!this.canAct()) throw notActive(this.deps.tier?.role() ?? soleCoordinator().role(), "maintenance mode not changed");
    await this.deps.audit.ready();
    // Recorded before it takes effect: a restarted coordinator must find it.
    await this.deps.durable?.writeMaintenance(paused, who.operator, who.reason).catch((err: unknown) => {
      throw new HaError(ErrorCode.Unavailable, `maintenance mode cannot be recorded in the lock database (${describeError(err)}); nothing changed`);
    });
    const was = this.maintenance;
    this.maintenance = paused;
    const message = paused
      ? was ? "maintenance mode already on: automatic actions stay paused" : "maintenance mode on: automatic actions paused; findings are still reported"
      : was ? "maintenance mode off: automatic actions resumed" : "maintenance mode already off";
    const notAudited = await recordAfterActing(this.deps.audit, this.deps.log, {
      ...who,
      type: paused ? AuditType.MaintenancePaused : AuditType.MaintenanceResumed,
      message,
      evidence: { was_paused: was },
    });
    this.evaluate();
    return { paused: this.maintenance, message, notAudited };
  }

  /**
   * manual-reconcile's hold: while on, nobody campaigns until a failover names
   * a node, and every node that connects is ordered to hold. Audited when it
   * changes. Returns whether it was on.
   */
  async setReconcileHold(on: boolean, who: Actor, why: string): Promise<boolean> {
    if (!this.canAct()) throw notActive(this.deps.tier?.role() ?? soleCoordinator().role(), "manual-reconcile hold not changed");
    const was = this.reconcileHold;
    // Setting it is recorded before it takes effect (agents read it before
    // they campaign on their own); clearing it is retried until recorded.
    if (was !== on) {
      const writing = this.deps.durable?.writeReconcileHold(on, who.operator, why);
      if (on) {
        await writing?.catch((err: unknown) => {
          throw new HaError(ErrorCode.Unavailable, `the manual-reconcile hold cannot be recorded in the lock database (${describeError(err)})`);
        });
      } else {
        void writing?.catch((err: unknown) => {
          this.deps.log.error({ err: describeError(err) }, "clearing the manual-reconcile hold in the lock database failed; it is retried");
          this.unrecordedHoldClear = who;
        });
      }
    }
    this.reconcileHold = on;
    if (was !== on) {
      this.deps.log.info({ reconcile_hold: on }, `manual-reconcile hold ${on ? "on" : "off"}: ${why}`);
      this.auditLater({ ...who, type: on ? AuditType.ReconcileHoldSet : AuditType.ReconcileHoldCleared, message: `manual-reconcile hold ${on ? "on" : "off"}: ${why}` });
    }
    return was;
  }

  /** An admin operation put a leader in place: counted for /metrics (its own audit event says how). */
  failoverCompleted(kind: "planned" | "recovery"): void {
    this.count.failovers[kind]++;
  }

  view(): ClusterView {
    return {
      clusterId: this.deps.policy.clusterId,
      nodes: this.deps.sessions.nodes(),
      db: this.deps.truth.latest(),
      maintenance: this.maintenance,
      reconcileHold: this.reconcileHold,
      operationInProgress: this.operation,
      epochFloor: this.epochFloor,
      lastAutomaticFailoverMs: this.lastAutomaticFailoverMs,
      leaderlessSinceMs: this.leaderlessSinceMs,
      pendingCampaign: this.pendingCampaign,
      designation: this.designation,
      servers: this.deps.databases?.servers ?? [],
      settle: {
        active: this.settle.state === "settling" || this.settle.state === "ordering",
        reason: `cold start: holding ${[...this.settle.held].sort().join(", ") || "the nodes"} until the best of them is ordered to lead`,
        held: this.settle.held,
      },
    };
  }

  /** The highest epoch confirmed in the lock database: what report epochs are bounded by (report-validation.ts). */
  confirmedEpoch(): number {
    // Not through view(): this runs for every report, and needs no node.
    return Math.max(this.epochFloor, confirmedByDatabase(this.deps.truth.latest()));
  }

  leader(): LeaderView {
    return leaderOf(this.view(), this.deps.policy, this.deps.clock.monotonicMs());
  }

  finding(): FindingState {
    return this.findingState;
  }

  /** Lock holders that are no agent's session, as of the last evaluation. */
  intruders(): readonly IntruderFinding[] {
    return this.currentIntruders;
  }

  /**
   * Evaluates once on the next turn of the event loop, however many reports
   * arrive in this one: a burst of thousands of reports costs one walk over
   * the view, not one each. The database may have changed with them, so it is
   * read again too (and evaluated again when the read lands).
   */
  private evaluateSoon(): void {
    if (this.evaluation || this.stopped) return;
    this.evaluation = setImmediate(() => {
      this.evaluation = undefined;
      this.evaluate();
      void this.deps.truth.refresh();
    });
  }

  /** Re-evaluates now: detection and leader changes synchronously, decisions right after. */
  evaluate(): void {
    if (this.stopped) return;
    const now = this.deps.clock.monotonicMs();
    this.deps.sessions.expire(now);
    // Not a max with the old value: a different server (not a promoted standby) starts from its own floor.
    // The coordinator's own reads of every listed server count too: the first
    // term on a promoted server goes above epochs its replication lost.
    const truth = this.deps.truth.latest();
    this.epochFloor = Math.max(this.deps.floor.observe(truth), this.deps.databases?.highestEpochOf(truth?.identity?.systemIdentifier) ?? 0);
    const view = this.view();
    this.trackFinding(detectSplitBrain(view, this.deps.policy, now), view);
    this.trackIntruders(detectIntruders(view, this.deps.policy, now));
    const leader = leaderOf(view, this.deps.policy, now);
    this.trackLeader(leader, now);
    if (!this.canAct()) return;
    this.retryHoldClear();
    this.checkSettle(now);
    this.deps.databases?.observe(leader, view.db, now);
    this.scheduleDecisions();
  }

  /** Called for every applied report. */
  private onReport(nodeId: string, material: boolean): void {
    const node = this.deps.sessions.node(nodeId);
    if (!this.canAct()) {
      if (material) this.evaluateSoon();
      return;
    }
    if (material && node) this.checkLease(node);
    // While an admin operation runs it holds whom it needs: holding its
    // successor here would cancel the very campaign it ordered.
    if (this.reconcileHold && !this.operation && node && !node.report.held && !node.report.sessionLockHeld && !this.holdSent.has(nodeId)) {
      this.holdSent.add(nodeId);
      this.command(nodeId, { kind: "hold" }, "manual-reconcile in effect: do not campaign until a failover names a node");
    }
    if (node) this.holdIfSuperseded(node);
    if (node && (this.settle.state === "open" || this.settle.state === "settling")) this.settleOnReport(node);
    if (material) this.evaluateSoon();
  }

  private retryHoldClear(): void {
    const who = this.unrecordedHoldClear;
    if (!who || this.reconcileHold || !this.deps.durable) return;
    this.unrecordedHoldClear = undefined;
    this.deps.durable.writeReconcileHold(false, who.operator, "cleared (recorded late)").catch(() => (this.unrecordedHoldClear ??= who));
  }

  /** Holds a node that reports while a cold start settles; ends the settle at once when someone leads already. */
  private settleOnReport(node: NodeState): void {
    const db = this.deps.truth.latest();
    const led = db?.reachable === true && (db.lockHolders.length > 0 || db.leadership.holderId !== undefined);
    if (this.deps.policy.settleMs === 0 || led || node.report.sessionLockHeld || node.report.writeReady) {
      this.settle.state = "done";
      this.releaseSettled(undefined, "a leader exists: nothing to settle");
      return;
    }
    this.settle.startedMs ??= this.deps.clock.monotonicMs();
    this.settle.state = "settling";
    if (node.report.held || node.report.nofailover || this.settle.held.has(node.nodeId)) return;
    this.settle.held.add(node.nodeId);
    this.command(node.nodeId, { kind: "hold" }, "cold start: settling so the preferred node leads, not the first to connect");
  }

  /** Ends the settle when its time is up (or every --expect-nodes node reported): orders the best held node, then releases the rest. */
  private checkSettle(nowMs: number): void {
    if (this.settle.state !== "settling" || this.settle.startedMs === undefined) return;
    const p = this.deps.policy;
    const expected = p.expectNodes;
    // In: connected, and its lock session up (a node's very first report may precede it).
    const allIn = expected.length > 0 && expected.every((id) => {
      const n = this.deps.sessions.node(id);
      return n?.connected === true && n.report.role !== "disconnected";
    });
    const waited = nowMs - this.settle.startedMs;
    if (!allIn && waited < (expected.length > 0 ? p.settleMaxMs : p.settleMs)) return;
    this.settle.state = "ordering";
    const view = this.view();
    const choice = this.maintenance || this.reconcileHold || !p.autoFailover
      ? undefined
      : chooseSuccessor(view, p, nowMs, { exclude: [], allowHeld: false, heldBySettle: this.settle.held, allowCriticalLag: false });
    const reported = [...this.settle.held].sort().join(", ") || "none";
    if (!choice?.nodeId) {
      this.settle.state = "done";
      this.deps.log.info({ reported }, `cold start settled after ${Math.round(waited)}ms with no node to order (${choice?.reason ?? "automatic action is off"}); releasing the held nodes`);
      this.releaseSettled(undefined, "cold start settled");
      return;
    }
    const target = choice.nodeId;
    const reason = `cold start settled after ${Math.round(waited)}ms (reported: ${reported}): ${choice.reason}`;
    this.deps.log.info({ node_id: target }, reason);
    this.auditLater({ type: AuditType.FailoverAutomatic, node_id: target, message: `ordered ${target} to campaign`, reason, evidence: { cause: "cold_start", reported: [...this.settle.held].sort() } });
    this.count.failovers.automatic++;
    this.pendingCampaign = { nodeId: target, sentAtMs: nowMs };
    this.deps.sessions
      .send(target, { kind: "campaign", epochFloor: highestEpochKnown(view), waitMs: 0 }, reason, { timeoutMs: p.campaignTimeoutMs })
      .then(
        (o) => {
          this.deps.log.info({ node_id: target, result: o.result, epoch: o.epoch }, `cold-start campaign of ${target}: ${o.result}${o.message ? ` (${o.message})` : ""}`);
          return o.result === "done" ? o.epoch : undefined;
        },
        (err: unknown) => {
          this.deps.log.warn({ node_id: target, err: describeError(err) }, "cold-start campaign failed");
          return undefined;
        },
      )
      .then((epoch) => {
        if (this.pendingCampaign?.nodeId === target) this.pendingCampaign = undefined;
        this.settle.state = "done";
        // The release's epoch guard compares with the term the campaign opened.
        this.releaseSettled(target, "cold start settled", epoch);
        this.evaluate();
      });
  }

  /** Releases the nodes the settle held (all but `except`, which its campaign released). */
  private releaseSettled(except: string | undefined, why: string, epoch?: number): void {
    for (const id of this.settle.held) if (id !== except && this.deps.sessions.isConnected(id)) this.command(id, { kind: "release" }, why, epoch);
    this.settle.held.clear();
  }

  /**
   * A node whose lock database a promotion superseded holds until it reports
   * the authoritative one: no term there, whatever it could reach. Released
   * then, unless a manual-reconcile hold is in effect.
   */
  private holdIfSuperseded(node: NodeState): void {
    const why = this.deps.databases?.nodeSuperseded(node.report);
    const { nodeId } = node;
    if (why && !this.supersededHeld.has(nodeId)) {
      this.supersededHeld.add(nodeId);
      const message = `held ${nodeId}: its lock database is superseded (${why}); it stays held until it reaches the authoritative primary`;
      this.deps.log.warn({ node_id: nodeId }, message);
      this.auditLater({ type: AuditType.NodeHeldOnSupersededDatabase, node_id: nodeId, epoch: node.report.epoch, message, evidence: { lock_database_id: node.report.lockDatabaseId } });
      this.command(nodeId, { kind: "hold" }, `on a superseded database: ${why}`);
    } else if (!why && this.supersededHeld.has(nodeId) && node.report.lockDatabase !== undefined) {
      this.supersededHeld.delete(nodeId);
      if (!this.reconcileHold) this.command(nodeId, { kind: "release" }, "now on the authoritative primary");
    }
  }

  private onConnection(nodeId: string, connected: boolean): void {
    if (!connected) {
      this.holdSent.delete(nodeId);
      this.supersededHeld.delete(nodeId);
      this.settle.held.delete(nodeId);
      if (this.designation?.nodeId === nodeId && this.designation.active) this.endDesignation(nodeId);
    }
    this.evaluate();
  }

  /** Runs an admin operation alone: automatic decisions wait, other operations queue. */
  runOperation<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const run = this.operations.then(async () => {
      if (!this.canAct()) throw notActive(this.deps.tier?.role() ?? soleCoordinator().role(), `${name} not started`);
      this.operation = name;
      try {
        return await fn();
      } finally {
        this.operation = undefined;
        this.evaluate();
      }
    });
    this.operations = run.catch(() => undefined);
    return run;
  }

  /** Releases the standing designation (before an operation picks its own successor). */
  async releaseDesignation(reason: string): Promise<void> {
    const d = this.designation;
    if (!d?.active) return;
    this.endDesignation(d.nodeId);
    await this.deps.sessions
      .send(d.nodeId, { kind: "release" }, reason, { timeoutMs: this.deps.policy.commandTimeoutMs })
      .catch((err: unknown) => this.deps.log.warn({ node_id: d.nodeId, err: describeError(err) }, "release of designated successor failed"));
  }

  private noteAutomaticFailover(): void {
    this.lastAutomaticFailoverMs = this.deps.clock.monotonicMs();
    this.deps.durable?.writeAutomaticFailover().catch((err: unknown) => this.deps.log.warn({ err: describeError(err) }, "recording the failover cooldown in the lock database failed"));
  }

  /** Logs and audits, once per node and lease value, a lease the failure timeout does not cover. */
  private checkLease(node: NodeState): void {
    const f = leaseFinding(node, this.deps.policy);
    if (!f) {
      this.leaseWarned.delete(node.nodeId);
      return;
    }
    if (this.leaseWarned.get(node.nodeId) === f.leaseMs) return;
    this.leaseWarned.set(node.nodeId, f.leaseMs);
    this.deps.log.warn({ node_id: f.nodeId, lease_ms: f.leaseMs, failure_timeout_ms: f.failureTimeoutMs }, f.detail);
    this.auditLater({ type: AuditType.NodeLeaseTooLong, node_id: f.nodeId, message: f.detail, evidence: { lease_ms: f.leaseMs, failure_timeout_ms: f.failureTimeoutMs } });
  }

  private trackFinding(finding: SplitBrainFinding, view: ClusterView): void {
    const prev = this.findingState;
    const names = (f: SplitBrainFinding) => f.criteria.filter((c) => c.detected).map((c) => c.name);
    const before = new Set(names(prev.finding));
    const added = names(finding).filter((n) => !before.has(n));
    if (finding.detected && (!prev.finding.detected || added.length > 0)) {
      const first = !prev.finding.detected;
      const detectedAt = first ? this.deps.clock.now() : prev.detectedAt;
      this.findingState = { finding, detectedAt };
      if (first) this.count.splitBrainDetections++;
      const detail = finding.criteria.filter((c) => c.detected).map((c) => `${c.name}: ${c.detail}`).join("; ");
      this.deps.log.warn({ criteria: names(finding), claimants: finding.claimants }, `split-brain detected: ${detail}`);
      if (first) this.deps.events.publish("split_brain_detected", this.deps.events.leader, `split-brain detected: ${detail}`);
      const top = [...view.nodes].filter((n) => finding.claimants.includes(n.nodeId)).sort((a, b) => b.report.epoch - a.report.epoch)[0];
      this.auditLater({
        type: AuditType.SplitBrainDetected,
        node_id: top?.nodeId ?? "",
        epoch: top?.report.epoch ?? view.db?.leadership.epoch ?? 0,
        message: `split-brain detected: ${detail}`,
        reason: finding.explanation,
        evidence: evidenceOf(finding, view),
      });
      return;
    }
    if (!finding.detected && prev.finding.detected) {
      this.deps.log.info("split-brain resolved");
      this.deps.events.publish("split_brain_resolved", this.deps.events.leader, "split-brain no longer present");
      this.auditLater({ type: AuditType.SplitBrainResolved, message: "split-brain no longer present", evidence: evidenceOf(finding, view) });
      this.findingState = { finding, detectedAt: undefined };
      return;
    }
    this.findingState = { finding, detectedAt: prev.detectedAt };
  }

  /** Each intruding session is logged, counted and audited once, when first seen. */
  private trackIntruders(found: IntruderFinding[]): void {
    this.currentIntruders = found;
    for (const i of found) {
      const key = sessionKey(i.pid, i.backendStart);
      if (this.intrudersSeen.has(key)) continue;
      this.intrudersSeen.add(key);
      if (this.intrudersSeen.size > 1000) this.intrudersSeen.delete(this.intrudersSeen.values().next().value!);
      this.count.intruders.detected++;
      this.deps.log.warn({ pid: i.pid, application_name: i.applicationName, client_addr: i.clientAddr }, `intruder holds the leader lock: ${i.detail}`);
      this.auditLater({
        type: AuditType.IntruderDetected,
        node_id: i.impersonates ?? "",
        message: `intruder holds the leader lock: ${i.detail}`,
        evidence: intruderEvidence(i),
      });
    }
  }

  private trackLeader(next: LeaderView, now: number): void {
    if (next.holderId === "") this.leaderlessSinceMs ??= now;
    else this.leaderlessSinceMs = undefined;
    const prev = this.deps.events.leader;
    const change = leaderChange(prev, next);
    if (change) {
      this.deps.events.publish(change.kind, next, change.message);
      if (change.kind === "leader_lost") {
        this.deps.log.warn({ previous: prev.holderId, epoch: prev.epoch }, "leader lost");
        this.auditLater({ type: AuditType.LeaderLost, node_id: prev.holderId, epoch: prev.epoch, message: `${prev.holderId} no longer holds write authority` });
      } else if (change.kind === "leader_changed") {
        this.deps.log.info({ holder_id: next.holderId, epoch: next.epoch, previous: prev.holderId }, "leader changed");
      }
    }
    this.auditTerm(next);
  }

  /**
   * Audits each term once (ha.leader.changed), against the last term this
   * coordinator audited rather than the last one it published: a term that
   * began while it was a standby (or had not taken over yet) is audited when
   * it acts again, not lost.
   */
  private auditTerm(next: LeaderView): void {
    if (!this.canAct() || !this.termsCaughtUp || next.holderId === "" || next.epoch <= this.audited.epoch) return;
    const prev = this.audited;
    this.audited = next;
    this.noteAudited(next.epoch);
    const change = leaderChange(prev, next);
    this.auditLater({
      type: AuditType.LeaderChanged,
      node_id: next.holderId,
      epoch: next.epoch,
      message: change?.message ?? `${next.holderId} holds epoch ${next.epoch}`,
      evidence: { previous_holder: prev.holderId, previous_epoch: prev.epoch },
    });
  }

  /**
   * On taking over: the terms of leader_epochs that began after the last one
   * the audit records and ended before now (while no coordinator was acting,
   * or before this one took over) are audited, marked as recorded late; the
   * current term is audited as it is seen.
   */
  private async catchUpTerms(): Promise<void> {
    const missed = await this.deps.durable?.termsNotAudited().catch((err: unknown) => {
      this.deps.log.warn({ err: describeError(err) }, "cannot read the terms missing from the audit; they stay unrecorded");
      return undefined;
    });
    if (!missed || !this.canAct()) {
      this.termsCaughtUp = true;
      this.evaluate();
      return;
    }
    let prev: { holderId: string; epoch: number } = { holderId: "", epoch: missed.auditedEpoch };
    for (const t of missed.terms) {
      // The term the engine audits as it sees it (the current one, or any it audited since taking over) is not recorded twice.
      const current = this.leader();
      if (this.auditedEpochs.has(t.epoch) || (current.holderId === t.holderId && current.epoch === t.epoch)) continue;
      this.noteAudited(t.epoch);
      if (t.epoch > this.audited.epoch) this.audited = { ...noLeader, holderId: t.holderId, epoch: t.epoch };
      this.auditLater({
        type: AuditType.LeaderChanged,
        node_id: t.holderId,
        epoch: t.epoch,
        message: `${t.holderId} held epoch ${t.epoch}${prev.holderId ? ` (was ${prev.holderId}, epoch ${prev.epoch})` : ""}; recorded late: it began while no coordinator was acting`,
        evidence: {
          previous_holder: prev.holderId,
          previous_epoch: prev.epoch,
          recorded_late: true,
          acquired_at: t.acquiredAt.toISOString(),
          resigned_at: t.resignedAt?.toISOString() ?? null,
          end_reason: t.endReason ?? null,
        },
      });
      prev = { holderId: t.holderId, epoch: t.epoch };
    }
    if (this.audited.epoch < missed.auditedEpoch) {
      // The current term, when the audit already has it, is not recorded again.
      const current = this.leader();
      this.audited = current.epoch === missed.auditedEpoch ? current : { ...this.audited, epoch: missed.auditedEpoch };
    }
    this.termsCaughtUp = true;
    this.evaluate();
  }

  private noteAudited(epoch: number): void {
    this.auditedEpochs.add(epoch);
    if (this.auditedEpochs.size > 1000) this.auditedEpochs.delete(this.auditedEpochs.values().next().value!);
  }

  private scheduleDecisions(): void {
    if (this.applying) {
      this.again = true;
      return;
    }
    this.applying = true;
    void this.runDecisions().finally(() => {
      this.applying = false;
    });
  }

  private async runDecisions(): Promise<void> {
    do {
      this.again = false;
      if (this.stopped) return;
      const now = this.deps.clock.monotonicMs();
      const decisions = decide(this.view(), this.deps.policy, now, this.findingState.finding);
      // Logged when the decision changes, not every cycle (reasons carry ages in ms).
      const reasons = decisions.map((d) => `${d.kind}:${"nodeId" in d ? d.nodeId : ""}`).join(" | ");
      if (reasons !== this.lastReasons) {
        this.lastReasons = reasons;
        for (const d of decisions) this.deps.log.info({ decision: d.kind }, d.reason);
      }
      for (const d of decisions) {
        try {
          await this.apply(d);
        } catch (err) {
          this.deps.log.error({ decision: d.kind, err: describeError(err) }, "applying a decision failed");
        }
      }
    } while (this.again);
  }

  private async apply(d: Decision): Promise<void> {
    const now = this.deps.clock.monotonicMs();
    switch (d.kind) {
      case "campaign": {
        this.pendingCampaign = { nodeId: d.nodeId, sentAtMs: now };
        this.noteAutomaticFailover();
        this.count.failovers.automatic++;
        // The order is audited now; the epoch it produced, once acked, so the
        // history shows this action against the term it opened.
        this.auditLater({ type: AuditType.FailoverAutomatic, node_id: d.nodeId, message: `ordered ${d.nodeId} to campaign`, reason: d.reason, evidence: { cause: d.cause, epoch_floor: d.epochFloor } });
        this.deps.sessions
          // After terminating a hung leader its backend takes a moment to go: wait on the lock briefly.
          .send(d.nodeId, { kind: "campaign", epochFloor: d.epochFloor, waitMs: d.cause === "leader_hung" ? Math.round(this.deps.policy.campaignTimeoutMs / 2) : 0 }, d.reason, {
            timeoutMs: this.deps.policy.campaignTimeoutMs,
          })
          .then(
            (o) => {
              if (o.result === "done") {
                this.auditLater({ type: AuditType.FailoverAutomatic, node_id: d.nodeId, epoch: o.epoch, message: `${d.nodeId} acquired epoch ${o.epoch} after an automatic campaign`, reason: d.reason, evidence: { cause: d.cause, epoch_floor: d.epochFloor } });
              }
              this.deps.log.info({ node_id: d.nodeId, result: o.result, epoch: o.epoch }, `automatic campaign of ${d.nodeId}: ${o.result}${o.message ? ` (${o.message})` : ""}`);
            },
            (err: unknown) => this.deps.log.warn({ node_id: d.nodeId, err: describeError(err) }, "automatic campaign failed"),
          )
          .finally(() => {
            if (this.pendingCampaign?.nodeId === d.nodeId) this.pendingCampaign = undefined;
            this.evaluate();
          });
        return;
      }
      case "terminate_intruder": {
        // A backend is still listed for a moment after it was signalled, so
        // reads meanwhile decide to end it again: it was ended and recorded once.
        const key = sessionKey(d.pid, d.backendStart);
        if (this.intrudersEnded.has(key)) return;
        const ended = await this.deps.truth.terminateIntruder(d.pid, d.applicationName, d.backendStart);
        if (ended) {
          this.count.intruders.terminated++;
          this.intrudersEnded.add(key);
          if (this.intrudersEnded.size > 1000) this.intrudersEnded.delete(this.intrudersEnded.values().next().value!);
        }
        const found = this.currentIntruders.find((i) => i.pid === d.pid);
        this.deps.log.warn({ pid: d.pid, ended }, ended ? `intruder pid ${d.pid} terminated` : `intruder pid ${d.pid} already gone`);
        this.auditLater({
          type: AuditType.IntruderTerminated,
          node_id: found?.impersonates ?? "",
          message: ended ? `terminated intruding lock session pid ${d.pid} (application_name "${d.applicationName}")` : `intruding lock session pid ${d.pid} was already gone`,
          reason: d.reason,
          evidence: { ...(found ? intruderEvidence(found) : { pid: d.pid, application_name: d.applicationName }), terminated: ended },
        });
        void this.deps.truth.refresh();
        return;
      }
      case "terminate_leader": {
        const pids = await this.deps.truth.terminateLockSession(d.nodeId, d.pid);
        this.noteAutomaticFailover();
        // The event names the term it ended (epoch), so `ha history` can say what ended it.
        this.auditLater({ type: AuditType.FailoverAutomatic, node_id: d.nodeId, epoch: d.epoch, message: `terminated lock session ${pids.join(", ") || "(already gone)"} of hung leader ${d.nodeId}`, reason: d.reason, evidence: { pids } });
        void this.deps.truth.refresh();
        return;
      }
      case "designate_successor": {
        const sentAtMs = now;
        this.designation = { nodeId: d.nodeId, sentAtMs, waitMs: d.waitMs, active: true, endedAtMs: undefined };
        this.recordDesignation(d.nodeId);
        this.deps.sessions
          .send(d.nodeId, { kind: "campaign", epochFloor: d.epochFloor, waitMs: d.waitMs }, d.reason, { timeoutMs: d.waitMs + this.deps.policy.commandTimeoutMs })
          .then(
            (o) => {
              if (o.result === "done") {
                this.count.failovers.automatic++;
                this.auditLater({ type: AuditType.FailoverAutomatic, node_id: d.nodeId, epoch: o.epoch, message: `designated successor ${d.nodeId} acquired epoch ${o.epoch}`, reason: d.reason });
              }
              this.deps.log.info({ node_id: d.nodeId, result: o.result, epoch: o.epoch }, `designated successor's wait ended: ${o.result}${o.message ? ` (${o.message})` : ""}`);
            },
            (err: unknown) => this.deps.log.debug({ node_id: d.nodeId, err: describeError(err) }, "designated successor's wait ended"),
          )
          .finally(() => {
            if (this.designation?.nodeId === d.nodeId && this.designation.sentAtMs === sentAtMs) this.endDesignation(d.nodeId);
            this.evaluate();
          });
        return;
      }
      case "release_designee":
        await this.releaseDesignation(d.reason);
        return;
      case "recover_split_brain":
        if (this.deps.recover && !this.operation) {
          void this.deps.recover(this, d.nodeId, d.reason).catch((err: unknown) => this.deps.log.error({ err: describeError(err) }, "automatic split-brain recovery failed"));
        }
        return;
      default:
        return; // decisions that change nothing
    }
  }

  private endDesignation(nodeId: string): void {
    if (this.designation?.nodeId !== nodeId) return;
    this.designation = { ...this.designation, active: false, endedAtMs: this.deps.clock.monotonicMs() };
    this.recordDesignation("");
  }

  /** The designated successor in the lock database, for a coordinator that takes over (only the active one writes). */
  private recordDesignation(nodeId: string): void {
    if (!this.canAct()) return;
    this.deps.durable?.writeDesignation(nodeId).catch((err: unknown) => this.deps.log.warn({ err: describeError(err) }, "recording the designated successor in the lock database failed"));
  }

  /** Sends a command whose ack only needs logging. */
  command(nodeId: string, action: Parameters<NodeSessions["send"]>[1], reason: string, epoch?: number): void {
    this.deps.sessions
      .send(nodeId, action, reason, { timeoutMs: this.deps.policy.commandTimeoutMs, epoch })
      .then(
        (o) => this.deps.log.info({ node_id: nodeId, result: o.result }, `${action.kind} ${o.result}`),
        (err: unknown) => this.deps.log.warn({ node_id: nodeId, err: describeError(err) }, `${action.kind} failed`),
      );
  }

  private auditLater(input: Parameters<AuditLog["append"]>[0]): void {
    // The active coordinator writes the audit; a standby would write every event again.
    if (!this.canAct()) return;
    this.deps.audit.append(input).catch((err: unknown) => this.deps.log.error({ err: describeError(err), type: input.type }, "audit write failed"));
  }
}

/** One backend session: a pid is reused, its start time is not. */
function sessionKey(pid: number, backendStart: Date | undefined): string {
  return `${pid}/${backendStart?.getTime() ?? ""}`;
}

function intruderEvidence(i: IntruderFinding): Record<string, unknown> {
  return {
    pid: i.pid,
    application_name: i.applicationName,
    client_addr: i.clientAddr ?? null,
    backend_start: i.backendStart?.toISOString() ?? null,
    impersonates: i.impersonates ?? null,
    held_for_ms: Math.round(i.heldForMs),
  };
}

function evidenceOf(finding: SplitBrainFinding, view: ClusterView): Record<string, unknown> {
  return {
    criteria: finding.criteria.filter((c) => c.detected).map((c) => ({ name: c.name, detail: c.detail })),
    unclosed_epochs: finding.unclosedEpochs,
    nodes: view.nodes
      .filter((n) => finding.claimants.includes(n.nodeId))
      .map((n) => ({
        node_id: n.nodeId,
        epoch: n.report.epoch,
        session_lock_held: n.report.sessionLockHeld,
        write_ready: n.report.writeReady,
        lock_database_id: n.report.lockDatabaseId,
        connected: n.connected,
      })),
    database: view.db?.reachable
      ? {
          holder_id: view.db.leadership.holderId ?? null,
          epoch: view.db.leadership.epoch,
          lock_holders: view.db.lockHolders.map((h) => h.applicationName),
          unclosed: view.db.unclosedEpochs.map((e) => ({ epoch: e.epoch, holder_id: e.holderId })),
        }
      : { reachable: false },
  };
}

import { randomUUID } from "node:crypto";
import { waitFor } from "../../core/clock.js";
import { ErrorCode, HaError, describeError, failedPrecondition } from "../../core/errors.js";
import { lockDatabaseLabel, sameLockDatabase } from "../../core/lock-database.js";
import { AuditType } from "../audit/audit-event.js";
import { recoveryTarget } from "../decide/decide.js";
import type { AuditInput } from "../audit/audit-log.js";
import { claimsAuthority, highestEpochKnown, isFresh, nodeById, onDatabase, supersededLockDatabase, verifyLockClaim, type ClusterView, type NodeState } from "../view/cluster-view.js";
import { knownNode, type OperationContext, type Requester } from "./operation-context.js";

export type RecoveryStrategy = "promote-leader" | "manual-reconcile";

export interface RecoveryRequest extends Requester {
  readonly strategy: RecoveryStrategy;
  readonly force: boolean;
  readonly targetNode: string;
}

export interface RecoveryResult {
  readonly strategy: RecoveryStrategy;
  readonly recoveredAt: Date;
  readonly message: string;
  readonly leaderId: string;
  readonly epoch: number;
  readonly resignedNodes: string[];
  readonly requestId: string;
}

/** Seed 002's recovery strategies, run as one admin operation. */
export function recoverSplitBrain(ctx: OperationContext, req: RecoveryRequest): Promise<RecoveryResult> {
  return ctx.engine.runOperation(`split-brain recovery (${req.strategy})`, () =>
    req.strategy === "promote-leader" ? promoteLeader(ctx, req) : manualReconcile(ctx, req),
  );
}

/**
 * promote-leader: every other claimant resigns and holds; stale rows in the
 * coordinator's database are closed with conditional updates (WHERE
 * holder_id = $stale), so the correct leader's record is never overwritten;
 * then the correct leader is confirmed, taking a new epoch if its term did
 * not survive.
 */
async function promoteLeader(ctx: OperationContext, req: RecoveryRequest): Promise<RecoveryResult> {
  const { policy, sessions, truth, clock, log } = ctx;
  await truth.refresh();
  let view = ctx.engine.view();
  const now = clock.monotonicMs();
  let target: string;
  if (req.targetNode !== "") {
    const n = knownNode(view, req.targetNode, "target node");
    if (!isFresh(n, policy, now)) throw failedPrecondition(`${n.nodeId} is not connected to the coordinator; it cannot be confirmed as leader`);
    target = n.nodeId;
  } else {
    const t = recoveryTarget(view, policy, now);
    if (typeof t !== "string") throw failedPrecondition(`cannot choose the correct leader: ${t.why}; name one with --target or use manual-reconcile`);
    target = t;
  }
  verifyTarget(view, target);
  const requestId = randomUUID();
  const audit = { operator: req.operator, reason: req.reason, caller: req.caller, request_id: requestId };
  const t = nodeById(view, target)!;
  await auditFirst(ctx, {
    ...audit,
    type: AuditType.SplitBrainRecoveryStarted,
    node_id: target,
    epoch: t.report.epoch,
    message: `promote-leader of ${target} (epoch ${t.report.epoch}) started`,
    evidence: { strategy: "promote-leader", lock_backend_pid: t.report.lockBackendPid, lock_database_id: t.report.lockDatabaseId, forced: req.force },
  });
  await ctx.engine.releaseDesignation("split-brain recovery");

  const stale = view.nodes.filter((n) => n.nodeId !== target && n.connected && claimsAuthority(n.report));
  // Hold everyone else first: the lock the stale leaders give up is the
  // target's, not the next follower's that happens to try it.
  const bystanders = view.nodes.filter((n) => n.nodeId !== target && n.connected && !claimsAuthority(n.report) && !n.report.held);
  await holdAll(ctx, bystanders, "promote-leader: hold while the correct leader is confirmed");
  try {
    const result = await confirmTarget();
    // Stale leaders on the target's own database are plain followers now;
    // those on another server stay held, or they would lead there again.
    const targetDb = sessions.node(target)?.report.lockDatabase;
    for (const n of stale) {
      if (sameLockDatabase(n.report.lockDatabase, targetDb) === true) ctx.engine.command(n.nodeId, { kind: "release" }, "promote-leader finished", result.epoch);
    }
    return result;
  } finally {
    const epoch = truth.latest()?.leadership.epoch;
    for (const n of bystanders) ctx.engine.command(n.nodeId, { kind: "release" }, "promote-leader finished", epoch);
  }

  async function confirmTarget(): Promise<RecoveryResult> {
    const resigned = await resignAll(ctx, stale, req.force, "promote-leader: a stale leader resigns and holds");
    log.info({ request_id: requestId, target, resigned }, "promote-leader: stale claimants resigned");

    // Stale records in the coordinator's database.
    const db = await truth.refresh();
    const targetNode = sessions.node(target)!;
    const targetHere = onDatabase(targetNode.report.lockDatabase, db.identity) !== false;
    const keepEpoch = targetHere && targetNode.report.sessionLockHeld ? targetNode.report.epoch : -1;
    const cleared: string[] = [];
    /** Stale lock sessions ended by --force: a stale leader made to resign (the seed's "stale leader resigned"). */
    const terminated: string[] = [];
    if (db.reachable) {
      if (req.force) {
        // By pid: every lock session but the target's own, whatever name it carries.
        for (const h of db.lockHolders) {
          if (h.pid === targetNode.report.lockBackendPid) continue;
          const ended = await truth.terminateLockSession(h.applicationName, h.pid);
          if (ended.length > 0) terminated.push(h.applicationName);
          cleared.push(...ended.map((p) => `terminated pid ${p} (${h.applicationName})`));
        }
      }
      for (const e of db.unclosedEpochs) {
        if (e.holderId === target && e.epoch === keepEpoch) continue;
        await truth.supersedeEpoch(e.holderId, e.epoch);
        cleared.push(`closed epoch ${e.epoch} of ${e.holderId}`);
      }
      const holder = db.leadership.holderId;
      if (holder && holder !== target) {
        if (await truth.clearStaleHolder(holder)) cleared.push(`cleared leadership_state.holder_id = ${holder}`);
      }
    }

    // Confirm the correct leader; if its term did not survive, it takes a new one.
    const after = await truth.refresh();
    view = ctx.engine.view();
    const consistent = () => {
      const n = sessions.node(target);
      if (!n || !n.connected || !n.report.sessionLockHeld || n.report.epoch === 0) return false;
      const d = truth.latest();
      if (targetHere && d?.reachable) {
        // By pid: a session that merely carries the target's name confirms nothing.
        return d.leadership.holderId === target && d.leadership.epoch === n.report.epoch && d.lockHolders.some((h) => h.pid === n.report.lockBackendPid);
      }
      return n.report.observedLeader.holderId === target && n.report.observedLeader.epoch === n.report.epoch;
    };
    let bumped = false;
    if (!consistent()) {
      bumped = true;
      const floor = Math.max(highestEpochKnown(view), after.leadership.epoch);
      const n = sessions.node(target)!;
      if (n.report.sessionLockHeld) {
        await sessions.send(target, { kind: "resign", hold: false }, "promote-leader: re-open a clean term", { timeoutMs: policy.commandTimeoutMs, epoch: n.report.epoch }).catch(() => undefined);
      }
      const o = await sessions
        .send(target, { kind: "campaign", epochFloor: floor, waitMs: policy.operationTimeoutMs }, `promote-leader by ${req.operator}: ${req.reason}`, {
          timeoutMs: policy.operationTimeoutMs + policy.commandTimeoutMs,
        })
        .catch((err: unknown) => ({ result: "failed" as const, message: describeError(err) }));
      if (o.result !== "done") {
        const message = `${target} could not take a new term: ${o.message}`;
        const written = await auditAfter(ctx, { ...audit, type: AuditType.SplitBrainRecovered, node_id: target, message: `promote-leader failed: ${message}` });
        throw failedPrecondition(`${message}${written}`);
      }
    }
    await waitFor(() => consistent() || undefined, { timeoutMs: policy.operationTimeoutMs, intervalMs: 5, what: `${target} to hold a term the database agrees with` }).catch((err: unknown) => {
      throw new HaError(ErrorCode.DeadlineExceeded, `promote-leader incomplete: ${describeError(err)}`);
    });
    // Write-Ready follows the term by one report: give it that long before saying it is not.
    await waitFor(() => sessions.node(target)?.report.writeReady || undefined, { timeoutMs: policy.commandTimeoutMs, intervalMs: 5, what: `${target} to be Write-Ready` }).catch(() => undefined);
    const epoch = sessions.node(target)!.report.epoch;
    const writeReady = sessions.node(target)!.report.writeReady;
    ctx.engine.failoverCompleted("recovery");
    await ctx.engine.setReconcileHold(false, audit, `promote-leader confirmed ${target} as leader for epoch ${epoch}`);
    const staleLeaders = new Set([...resigned, ...terminated]);
    const head = staleLeaders.size > 0 ? `stale leader${staleLeaders.size > 1 ? "s" : ""} resigned` : cleared.length > 0 ? "stale records cleared" : "no stale leader found";
    const done = `${head}; ${target} confirmed as leader for epoch ${epoch}${writeReady ? "" : " (not Write-Ready yet)"}`;
    const recoveredAt = clock.now();
    const message = done + (await auditAfter(ctx, {
      ...audit,
      type: AuditType.SplitBrainRecovered,
      node_id: target,
      epoch,
      message: done,
      evidence: { strategy: "promote-leader", resigned_nodes: resigned, cleared, new_term: bumped, forced: req.force },
    }));
    return { strategy: "promote-leader", recoveredAt, message, leaderId: target, epoch, resignedNodes: resigned, requestId };
  }
}

/** manual-reconcile: everyone resigns and holds; nobody campaigns until a failover names a node. */
async function manualReconcile(ctx: OperationContext, req: RecoveryRequest): Promise<RecoveryResult> {
  const { policy, truth, clock } = ctx;
  const requestId = randomUUID();
  await auditFirst(ctx, {
    operator: req.operator,
    reason: req.reason,
    caller: req.caller,
    request_id: requestId,
    type: AuditType.SplitBrainRecoveryStarted,
    message: "manual-reconcile started",
    evidence: { strategy: "manual-reconcile", forced: req.force },
  });
  await ctx.engine.releaseDesignation("manual-reconcile");
  await truth.refresh();
  const view = ctx.engine.view();
  const connected = view.nodes.filter((n) => n.connected);
  const claimants = connected.filter((n) => claimsAuthority(n.report));
  const others = connected.filter((n) => !claimsAuthority(n.report));
  // Hold the others before any claimant resigns, so none of them takes the
  // lock the claimants give up.
  await holdAll(ctx, others, "manual-reconcile: hold");
  await ctx.engine.setReconcileHold(true, { operator: req.operator, reason: req.reason, caller: req.caller, request_id: requestId }, "manual-reconcile: nobody campaigns until a failover names a node");
  const resigned = await resignAll(ctx, claimants, req.force, "manual-reconcile: resign and hold");
  const db = await truth.refresh();
  const cleared: string[] = [];
  if (db.reachable) {
    if (req.force) for (const h of db.lockHolders) cleared.push(...(await truth.terminateLockSession(h.applicationName)).map((p) => `terminated pid ${p} (${h.applicationName})`));
    const after = req.force ? await truth.refresh() : db;
    if (after.lockHolders.length === 0) {
      for (const e of after.unclosedEpochs) {
        await truth.supersedeEpoch(e.holderId, e.epoch);
        cleared.push(`closed epoch ${e.epoch} of ${e.holderId}`);
      }
      if (after.leadership.holderId) {
        if (await truth.clearStaleHolder(after.leadership.holderId)) cleared.push(`cleared leadership_state.holder_id = ${after.leadership.holderId}`);
      }
    }
  }
  const final = await truth.refresh();
  if (final.reachable && final.lockHolders.length > 0) {
    const holders = final.lockHolders.map((h) => h.applicationName).join(", ");
    throw failedPrecondition(`manual-reconcile incomplete: ${holders} still holds the lock; retry, or add --force to end its lock session`);
  }
  const done = `elector state reset; ${connected.length === 2 ? "both" : "all"} nodes in standby mode; trigger failover manually`;
  const recoveredAt = clock.now();
  const message = done + (await auditAfter(ctx, {
    operator: req.operator,
    reason: req.reason,
    caller: req.caller,
    request_id: requestId,
    type: AuditType.SplitBrainRecovered,
    message: done,
    evidence: { strategy: "manual-reconcile", resigned_nodes: resigned, held_nodes: connected.map((n) => n.nodeId), cleared, forced: req.force },
  }));
  return { strategy: "manual-reconcile", recoveredAt, message, leaderId: "", epoch: 0, resignedNodes: resigned, requestId };
}

/**
 * promote-leader crowns only a claim the coordinator can check itself: a
 * node that claims the lock must hold it in the coordinator's own database,
 * by the lock session pid it reports; a node that claims nothing will
 * campaign there, so it must be connected to that database.
 */
function verifyTarget(view: ClusterView, target: string): void {
  const n = nodeById(view, target);
  if (!n) throw failedPrecondition(`${target} is not known to the coordinator; nothing was changed`);
  const superseded = supersededLockDatabase(view, n.report.lockDatabase);
  if (superseded) {
    throw failedPrecondition(`cannot make ${target} leader: its lock database ${superseded}; only a node on the authoritative primary can be crowned; nothing was changed`);
  }
  if (claimsAuthority(n.report)) {
    const check = verifyLockClaim(view, n);
    if (!check.verified) {
      throw failedPrecondition(
        `cannot confirm ${target} as leader: ${check.why}; nothing was changed. Verify its claim on that database, or use manual-reconcile`,
      );
    }
    return;
  }
  if (onDatabase(n.report.lockDatabase, view.db?.identity) !== true) {
    throw failedPrecondition(
      `cannot make ${target} leader: its lock database ${lockDatabaseLabel(n.report.lockDatabase) || "(not reported)"} is not one the coordinator can confirm as its own lock database; nothing was changed`,
    );
  }
}

/** Audit first: a recovery that cannot be recorded does not run. */
async function auditFirst(ctx: OperationContext, input: AuditInput): Promise<void> {
  try {
    await ctx.audit.append(input);
  } catch (err) {
    throw failedPrecondition(`the audit log cannot be written (${describeError(err)}): recovery refused before acting; nothing was changed`);
  }
}

/** After acting, the outcome is reported whatever the audit log says; its failure is appended to the message. */
async function auditAfter(ctx: OperationContext, input: AuditInput): Promise<string> {
  try {
    await ctx.audit.append(input);
    return "";
  } catch (err) {
    ctx.log.error({ err: describeError(err), type: input.type }, "audit write failed after a recovery acted");
    return ` (the audit event could not be written: ${describeError(err)})`;
  }
}

/** Orders each node to hold; any refusal or silence fails the operation, changing nothing further. */
async function holdAll(ctx: OperationContext, nodes: readonly NodeState[], reason: string): Promise<void> {
  // The epoch guard compares with leadership_state as the node reads it: for
  // a node on the coordinator's database that is the epoch just read there,
  // which is newer than what its last report may say right after a change.
  const db = ctx.truth.latest();
  const epochOf = (n: NodeState) => (db?.reachable && onDatabase(n.report.lockDatabase, db.identity) === true ? db.leadership.epoch : undefined);
  const failures = await Promise.all(
    nodes.map((n) =>
      ctx.sessions.send(n.nodeId, { kind: "hold" }, reason, { timeoutMs: ctx.policy.commandTimeoutMs, epoch: epochOf(n) }).then(
        (o) => (o.result === "done" ? undefined : `${n.nodeId} did not hold (${o.result}: ${o.message})`),
        (err: unknown) => `${n.nodeId} did not hold (${describeError(err)})`,
      ),
    ),
  );
  const errors = failures.filter((f): f is string => f !== undefined);
  if (errors.length > 0) {
    // All or nothing: let go of the nodes that did hold.
    nodes.forEach((n, i) => failures[i] === undefined && ctx.engine.command(n.nodeId, { kind: "release" }, `${reason}: abandoned`));
    throw failedPrecondition(`${errors.join("; ")}; nothing was resigned, retry`);
  }
}

/**
 * Orders each node to resign and hold. A node that refuses or does not answer
 * fails the operation, unless `force`: then its lock session is terminated,
 * when the coordinator's database holds it.
 */
async function resignAll(ctx: OperationContext, nodes: readonly NodeState[], force: boolean, reason: string): Promise<string[]> {
  const results = await Promise.all(
    nodes.map(async (n) => {
      let failure: string;
      try {
        const o = await ctx.sessions.send(n.nodeId, { kind: "resign", hold: true }, reason, {
          timeoutMs: ctx.policy.commandTimeoutMs,
          epoch: n.report.observedLeader.epoch || n.report.epoch,
        });
        if (o.result === "done") return { node: n.nodeId };
        failure = `${o.result}: ${o.message}`;
      } catch (err) {
        failure = describeError(err);
      }
      if (force) {
        const pids = await ctx.truth.terminateLockSession(n.nodeId);
        if (pids.length > 0) {
          ctx.engine.command(n.nodeId, { kind: "hold" }, `${reason} (lock session terminated)`);
          return { node: n.nodeId };
        }
        return { error: `stale leader ${n.nodeId} did not resign (${failure}) and its lock session is not in the coordinator's database` };
      }
      return { error: `stale leader ${n.nodeId} did not resign (${failure}); retry with --force to terminate its lock session` };
    }),
  );
  const errors = results.flatMap((r) => ("error" in r && r.error ? [r.error] : []));
  if (errors.length > 0) throw failedPrecondition(errors.join("; "));
  return results.flatMap((r) => ("node" in r && r.node ? [r.node] : []));
}

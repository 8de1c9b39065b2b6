import { randomUUID } from "node:crypto";
import { waitFor } from "../../core/clock.js";
import { ErrorCode, HaError, describeError, failedPrecondition } from "../../core/errors.js";
import { formatDurationMs } from "../../core/duration.js";
import type { CommandOutcome, LeaderView } from "../../core/model.js";
import { AuditType } from "../audit/audit-event.js";
import { recordAfterActing } from "../audit/audit-log.js";
import { candidateOf, chooseSuccessor, ineligibility, replicationLagStatus, type Ineligibility } from "../decide/successor.js";
import { highestEpochKnown, leaderOf, nodeById } from "../view/cluster-view.js";
import { knownNode, type OperationContext, type Requester } from "./operation-context.js";

export interface FailoverRequest extends Requester {
  readonly force: boolean;
  readonly targetNode: string;
  readonly expectedLeader: string;
  /** The node whose agent forwarded the call, if any: names itself after manual-reconcile. */
  readonly forwardedBy: string;
}

export interface FailoverResult {
  readonly previousHolder: string;
  readonly previousEpoch: number;
  readonly resignedAt: Date | undefined;
  readonly newHolder: string;
  readonly newEpoch: number;
  readonly message: string;
  readonly requestId: string;
}

/**
 * Seed 000's planned failover, made safe: preconditions first (the expected
 * leader is the leader, lag is not critical unless forced, a successor is
 * eligible), then the successor queues on the lock BEFORE the leader resigns,
 * so the lock passes to it within milliseconds; then epoch+1 and Write-Ready
 * are confirmed.
 */
export function plannedFailover(ctx: OperationContext, req: FailoverRequest): Promise<FailoverResult> {
  return ctx.engine.runOperation("planned failover", () => run(ctx, req));
}

async function run(ctx: OperationContext, req: FailoverRequest): Promise<FailoverResult> {
  const { policy, sessions, truth, clock, log } = ctx;
  await truth.refresh();
  const view = ctx.engine.view();
  const now = clock.monotonicMs();
  const leader = leaderOf(view, policy, now);
  if (req.expectedLeader !== "" && req.expectedLeader !== leader.holderId) {
    throw failedPrecondition(`not the leader; leader is ${leader.holderId || "nobody (no node holds write authority)"}`);
  }
  let targetId = req.targetNode;
  if (targetId === "" && leader.holderId === "" && req.forwardedBy !== "" && nodeById(view, req.forwardedBy)) targetId = req.forwardedBy;
  const target = targetId !== "" ? knownNode(view, targetId, "target node") : undefined;
  if (target && target.nodeId === leader.holderId) throw failedPrecondition(`${target.nodeId} is already the leader (epoch ${leader.epoch})`);

  const leaderNode = leader.holderId ? nodeById(view, leader.holderId) : undefined;
  if (leader.holderId) {
    const repl = leaderNode?.report.replication;
    if (repl && leaderNode && replicationLagStatus(leaderNode.report, policy) === "critical" && !req.force) {
      throw failedPrecondition(
        `replication lag critical; max replay lag ${formatDurationMs(repl.maxReplayLagSeconds * 1000)} exceeds ${policy.lagCriticalSeconds}s on ${leader.holderId}; wait for replication to catch up or retry with --force`,
      );
    }
    if (!sessions.isConnected(leader.holderId) && !req.force) {
      throw failedPrecondition(`leader ${leader.holderId} is not connected to the coordinator, so it cannot be ordered to resign; retry with --force to terminate its lock session`);
    }
  }

  let successor: string;
  // An operator may name a held node (after manual-reconcile); otherwise the rule is the automatic choice's.
  const rule = { allowHeld: true, lockDatabase: leaderNode?.report.lockDatabase };
  if (target) {
    const why = ineligibility(target, view, policy, now, rule);
    if (why) throw failedPrecondition(targetRefusal(target.nodeId, why));
    const c = candidateOf(target, policy);
    if (c.lagStatus === "critical" && !req.force) throw failedPrecondition(`replication lag critical on ${target.nodeId} (replay lag ${c.lagSeconds}s); retry with --force`);
    successor = target.nodeId;
  } else {
    const choice = chooseSuccessor(view, policy, now, {
      ...rule,
      exclude: leader.holderId ? [leader.holderId] : [],
      allowCriticalLag: req.force,
      leaderId: leader.holderId || undefined,
    });
    if (choice.nodeId === undefined) throw failedPrecondition(choice.reason);
    successor = choice.nodeId;
  }

  const requestId = randomUUID();
  const previousEpoch = leader.holderId ? leader.epoch : view.db?.leadership.epoch ?? 0;
  const floor = highestEpochKnown(view);
  const audit = { operator: req.operator, reason: req.reason, caller: req.caller, request_id: requestId };
  // Nothing has been done yet: a failover that could not be audited is refused here, not done unrecorded.
  await ctx.audit.ready();
  log.info({ request_id: requestId, leader: leader.holderId, successor, operator: req.operator }, `planned failover: ${leader.holderId || "no leader"} -> ${successor}`);
  await ctx.engine.releaseDesignation("a planned failover chooses its own successor");

  // Every other node holds for the failover's duration: a node already queued
  // on the lock (a --successor agent) would otherwise win it, the lock being FIFO.
  const held = await holdBystanders(ctx, [leader.holderId, successor]);
  let newEpoch: number | undefined;
  try {
    const result = await handOver(ctx, req, { leader, successor, previousEpoch, floor, audit, requestId });
    newEpoch = result.newEpoch;
    return result;
  } finally {
    // The release's epoch guard compares with the term the nodes now observe:
    // the one this failover opened, or whatever the database shows after a failure.
    await releaseBystanders(ctx, held, newEpoch);
  }
}

interface HandOver {
  readonly leader: LeaderView;
  readonly successor: string;
  readonly previousEpoch: number;
  readonly floor: number;
  readonly audit: Requester & { readonly request_id: string };
  readonly requestId: string;
}

/** Steps 1-3: the successor queues, the leader resigns, the new term is confirmed. */
async function handOver(ctx: OperationContext, req: FailoverRequest, h: HandOver): Promise<FailoverResult> {
  const { policy, sessions, truth, clock, log } = ctx;
  const { leader, successor, previousEpoch, floor, audit, requestId } = h;
  // 1. The successor queues on the lock first, so it wins the instant the leader lets go.
  const waitMs = policy.operationTimeoutMs;
  const campaign = settle(
    sessions.send(successor, { kind: "campaign", epochFloor: floor, waitMs }, `planned failover by ${req.operator}: ${req.reason}`, {
      timeoutMs: waitMs + policy.commandTimeoutMs,
    }),
  );
  let resignedAt: Date | undefined;
  if (leader.holderId) {
    await waitFor(async () => (await truth.lockWaiters()).includes(successor), { timeoutMs: 1_000, intervalMs: 5, what: `${successor} to queue on the lock` }).catch(
      () => log.warn({ successor }, "successor not seen waiting on the lock; resigning the leader anyway"),
    );
    // 2. The leader resigns (closes its epoch, unlocks).
    try {
      resignedAt = await resign(ctx, leader, req.force);
    } catch (err) {
      ctx.engine.command(successor, { kind: "release" }, "planned failover aborted: the leader did not resign");
      await recordAfterActing(ctx.audit, log, { ...audit, type: AuditType.FailoverFailed, node_id: leader.holderId, epoch: leader.epoch, message: describeError(err) });
      throw err;
    }
  }

  // An agent that cannot wait answers at once; then it tries again now that the lock is free.
  let standing = campaign;
  const early = await Promise.race([campaign, clock.sleep(0).then(() => undefined)]);
  if (early && !("result" in early && early.result === "done")) {
    standing = settle(
      sessions.send(successor, { kind: "campaign", epochFloor: floor, waitMs }, `planned failover by ${req.operator}: retry`, { timeoutMs: waitMs + policy.commandTimeoutMs }),
    );
  }
  // A campaign that ends without the lock (refused, superseded by a hold, the
  // agent gone) ends the wait with its reason, never a silent timeout.
  let campaignFailed: string | undefined;
  void standing.then((o) => {
    if (!("result" in o && o.result === "done")) campaignFailed = "result" in o ? `${o.result}: ${o.message}` : describeError(o.error);
  });

  // 3. Confirm: a new holder with a higher epoch, Write-Ready.
  let confirmed: LeaderView;
  try {
    const seen = await waitFor(
      () => {
        const l = ctx.engine.leader();
        if (l.holderId !== "" && l.epoch > previousEpoch && l.writeReady) return { leader: l };
        return campaignFailed !== undefined ? { failed: campaignFailed } : undefined;
      },
      { timeoutMs: policy.operationTimeoutMs, intervalMs: 5, what: `${successor} to hold epoch ${previousEpoch + 1} and be Write-Ready` },
    );
    if ("failed" in seen) throw new HaError(ErrorCode.FailedPrecondition, `failover failed: ${successor}'s campaign ended without the lock (${seen.failed})`);
    confirmed = seen.leader;
  } catch (err) {
    const outcome = campaignFailed === undefined ? await Promise.race([standing, clock.sleep(10).then(() => undefined)]) : undefined;
    const why = outcome ? `; campaign ${"result" in outcome ? `${outcome.result}: ${outcome.message}` : describeError(outcome.error)}` : "";
    const message = err instanceof HaError && err.code === ErrorCode.FailedPrecondition ? err.message : `failover incomplete: ${describeError(err)}${why}`;
    await recordAfterActing(ctx.audit, log, { ...audit, type: AuditType.FailoverFailed, node_id: successor, epoch: previousEpoch, message });
    if (err instanceof HaError && err.code === ErrorCode.FailedPrecondition) throw err;
    throw new HaError(ErrorCode.DeadlineExceeded, message);
  }

  ctx.engine.failoverCompleted("planned");
  const wasHeld = await ctx.engine.setReconcileHold(false, audit, `planned failover made ${confirmed.holderId} leader with epoch ${confirmed.epoch}`);
  const released = wasHeld ? releaseHeld(ctx, confirmed.holderId, confirmed.epoch) : [];
  const message = !leader.holderId
    ? `no leader held write authority; ${confirmed.holderId} acquired epoch ${confirmed.epoch}`
    : confirmed.holderId === successor
      ? `leader resigned gracefully; successor ${successor} acquired epoch ${confirmed.epoch}`
      : `leader resigned gracefully; ${confirmed.holderId} acquired epoch ${confirmed.epoch} (chosen successor ${successor} lost the race)`;
  // The failover happened: it is reported as done even when it cannot be recorded.
  const notAudited = await recordAfterActing(ctx.audit, log, {
    ...audit,
    type: AuditType.FailoverCompleted,
    node_id: confirmed.holderId,
    epoch: confirmed.epoch,
    message,
    evidence: {
      previous_holder: leader.holderId,
      previous_epoch: previousEpoch,
      successor,
      new_holder: confirmed.holderId,
      new_epoch: confirmed.epoch,
      forced: req.force,
      epoch_floor: floor,
      resigned_at: resignedAt?.toISOString() ?? null,
      released_held_nodes: released,
    },
  });
  log.info({ request_id: requestId, new_holder: confirmed.holderId, epoch: confirmed.epoch }, message);
  const answer = notAudited ? `${message}; WARNING: ${notAudited}` : message;
  return { previousHolder: leader.holderId, previousEpoch, resignedAt, newHolder: confirmed.holderId, newEpoch: confirmed.epoch, message: answer, requestId };
}

/** Orders the leader to resign; with force, ends its lock session when it cannot or will not. */
async function resign(ctx: OperationContext, leader: LeaderView, force: boolean): Promise<Date> {
  const { sessions, truth, policy, clock } = ctx;
  let failure: string;
  if (sessions.isConnected(leader.holderId)) {
    try {
      const o = await sessions.send(leader.holderId, { kind: "resign", hold: false }, "planned failover", { timeoutMs: policy.commandTimeoutMs, epoch: leader.epoch });
      if (o.result === "done") return o.resignedAt ?? clock.now();
      failure = `leader ${leader.holderId} ${o.result === "refused" ? "refused" : "failed"} to resign: ${o.message || o.result}`;
    } catch (err) {
      failure = `leader ${leader.holderId} did not resign: ${describeError(err)}`;
    }
  } else {
    failure = `leader ${leader.holderId} is not connected`;
  }
  if (!force) throw failedPrecondition(`${failure}; retry with --force to terminate its lock session`);
  const pids = await truth.terminateLockSession(leader.holderId);
  if (pids.length === 0) throw failedPrecondition(`${failure}, and its lock session is not visible in the coordinator's database`);
  ctx.log.warn({ node_id: leader.holderId, pids }, "forced failover: terminated the leader's lock session");
  return clock.now();
}

/** After manual-reconcile, the nodes not chosen go back to the normal campaign loop. */
function releaseHeld(ctx: OperationContext, leaderId: string, epoch: number): string[] {
  const held = ctx.sessions.nodes().filter((n) => n.connected && n.nodeId !== leaderId && n.report.held);
  // The guard epoch is the new term's: the nodes' last reports may predate it.
  for (const n of held) ctx.engine.command(n.nodeId, { kind: "release" }, "manual-reconcile ended by a failover", epoch);
  return held.map((n) => n.nodeId);
}

/** Why an operator's --target cannot take over, in the words the runbooks use. */
function targetRefusal(nodeId: string, why: Ineligibility): string {
  switch (why.code) {
    case "nofailover":
      return `${nodeId} has nofailover set; it is never a successor`;
    case "disconnected":
    case "silent":
      return `${nodeId} is not connected to the coordinator; it cannot campaign`;
    default:
      return `${nodeId} ${why.detail}; it cannot be the target`;
  }
}

type Settled = CommandOutcome | { error: unknown };
function settle(p: Promise<CommandOutcome>): Promise<Settled> {
  return p.then(
    (o) => o,
    (error: unknown) => ({ error }),
  );
}

/**
 * Orders every connected node but `except` (the leader and the successor)
 * that is not held already to hold. All or nothing: a node that does not hold
 * fails the failover before anything changed. Returns the nodes held.
 */
async function holdBystanders(ctx: OperationContext, except: readonly string[]): Promise<string[]> {
  const nodes = ctx.sessions.nodes().filter((n) => n.connected && !except.includes(n.nodeId) && !n.report.held);
  const results = await Promise.all(
    nodes.map((n) =>
      ctx.sessions.send(n.nodeId, { kind: "hold" }, "planned failover: hold while the chosen successor takes over", { timeoutMs: ctx.policy.commandTimeoutMs }).then(
        (o) => (o.result === "done" ? undefined : `${n.nodeId} did not hold (${o.result}: ${o.message})`),
        (err: unknown) => `${n.nodeId} did not hold (${describeError(err)})`,
      ),
    ),
  );
  const held = nodes.filter((_, i) => results[i] === undefined).map((n) => n.nodeId);
  const failures = results.filter((r): r is string => r !== undefined);
  if (failures.length > 0) {
    await releaseBystanders(ctx, held);
    throw failedPrecondition(`${failures.join("; ")}; nothing was changed, retry`);
  }
  return held;
}

/** Releases the nodes holdBystanders held, guarded by `epoch`, else the epoch the database shows now. */
async function releaseBystanders(ctx: OperationContext, held: readonly string[], epoch?: number): Promise<void> {
  if (held.length === 0) return;
  const guard = epoch ?? (await ctx.truth.refresh()).leadership.epoch;
  for (const id of held) ctx.engine.command(id, { kind: "release" }, "planned failover finished", guard);
}

import type { NodeCommand } from "../../core/model.js";
import { campaignFloorRefusal } from "./campaign-floor.js";
import { termOf, type ElectionState } from "./election-state.js";
import { coordinatedCampaignIntervalMs, lockAuthority } from "./readiness.js";

/** Why a node stays out of the race for a while after start or after resigning. */
export interface Quiet {
  readonly untilMs: number;
  readonly why: "startup_grace" | "resign_backoff";
}

/** What the election loop observed before this pass. */
export interface StepInputs {
  /** A lock session is open and has not failed. */
  readonly sessionAlive: boolean;
  /** A coordinator command is queued. */
  readonly commandPending: boolean;
  readonly coordinatorConnected: boolean;
  readonly quiet: Quiet | undefined;
  /** Monotonic time the leader's next heartbeat is due. */
  readonly nextHeartbeatMs: number;
  /** Monotonic time the follower's next own campaign is due (0: at once, e.g. after a takeover). */
  readonly nextCampaignMs: number;
  /** Who holds the lock as last observed; for the reasons only. */
  readonly lockHolder: string | undefined;
  /** Why the lock session's server may hold no term (a promotion superseded it), or undefined. */
  readonly superseded: string | undefined;
  /** The manual-reconcile hold is recorded in the database: no campaign of our own, coordinator or not. */
  readonly recordedHold: boolean;
}

export interface StepConfig {
  readonly leaseMs: number;
  readonly heartbeatIntervalMs: number;
  readonly campaignIntervalMs: number;
  readonly nofailover: boolean;
  readonly successor: boolean;
  /** A wait on the lock is re-armed in slices of this length. */
  readonly lockWaitSliceMs: number;
}

/**
 * One pass of the election loop. `inMs` > 0 means "not yet": the loop waits
 * that long (or until interrupted) and decides again; the stand-by kinds
 * (held, nofailover, startup_grace, resign_backoff) only ever wait.
 */
export type Step =
  /** Drop the term at once and close the lock session so Postgres frees the lock. */
  | { readonly kind: "fence"; readonly reason: string; readonly epoch: number }
  /** Open a new lock session. */
  | { readonly kind: "connect"; readonly reason: string }
  /** The session's server was superseded: resign any term there, fence the server, drop the session. */
  | { readonly kind: "leave_superseded"; readonly reason: string }
  /** Run the next queued coordinator command. */
  | { readonly kind: "run_command"; readonly reason: string }
  /** Confirm the lock and the term through the lock session. */
  | { readonly kind: "heartbeat"; readonly reason: string; readonly inMs: number }
  /** Wait on the lock for the ordered campaign, up to waitMs. */
  | { readonly kind: "ordered_campaign"; readonly reason: string; readonly waitMs: number }
  /** The ordered campaign's wait is over without the lock: answer it as failed. */
  | { readonly kind: "ordered_campaign_expired"; readonly reason: string }
  | { readonly kind: "held" | "nofailover" | "startup_grace" | "resign_backoff"; readonly reason: string; readonly inMs: number }
  /**
   * Queue on the lock (pg_advisory_lock), one slice at a time: a --successor
   * always, any follower while no coordinator is connected.
   */
  | { readonly kind: "lock_wait"; readonly reason: string; readonly waitMs: number }
  /** Try the lock once (pg_try_advisory_lock); the next try is intervalMs later (a backstop under a coordinator). */
  | { readonly kind: "campaign"; readonly reason: string; readonly inMs: number; readonly intervalMs: number };

export type StepKind = Step["kind"];

/** Every kind nextStep can return, for tests and for documentation. */
export const STEP_KINDS: readonly StepKind[] = [
  "fence",
  "connect",
  "leave_superseded",
  "run_command",
  "heartbeat",
  "ordered_campaign",
  "ordered_campaign_expired",
  "held",
  "nofailover",
  "startup_grace",
  "resign_backoff",
  "lock_wait",
  "campaign",
];

/** The election's decision for this pass: pure, so every case is a row in a table. */
export function nextStep(state: ElectionState, inputs: StepInputs, config: StepConfig, nowMs: number): Step {
  if (state.kind === "leader") {
    // Checked before anything else: authority ends at the lease deadline
    // even if the loop was paused and is only now running again.
    const authority = lockAuthority({ term: state.term, sessionAlive: inputs.sessionAlive, nowMs, leaseMs: config.leaseMs });
    if (!authority.ready) return { kind: "fence", epoch: state.term.epoch, reason: authority.reason };
  }
  if (!inputs.sessionAlive) {
    return { kind: "connect", reason: state.kind === "fenced" ? `fenced after epoch ${state.epoch}: reconnecting the lock session` : "no lock session" };
  }
  // No term is ever held or opened on a superseded server, whatever is queued.
  if (inputs.superseded) return { kind: "leave_superseded", reason: inputs.superseded };
  if (inputs.commandPending) return { kind: "run_command", reason: "a coordinator command is queued" };

  if (state.kind === "leader") {
    const inMs = Math.max(0, inputs.nextHeartbeatMs - nowMs);
    return { kind: "heartbeat", inMs, reason: `leader for epoch ${state.term.epoch}: heartbeat every ${config.heartbeatIntervalMs}ms` };
  }
  if (state.kind === "campaigning") {
    const { standing } = state;
    const left = standing.untilMs - nowMs;
    if (left <= 0) {
      return { kind: "ordered_campaign_expired", reason: `lock still held by ${inputs.lockHolder ?? "another session"} when the wait ended` };
    }
    return { kind: "ordered_campaign", waitMs: left, reason: `command ${standing.command.commandId} ordered a campaign: waiting on the lock above epoch ${standing.floor}` };
  }

  const standBy = (kind: "held" | "nofailover" | "startup_grace" | "resign_backoff", reason: string): Step => ({
    kind,
    reason,
    inMs: Math.max(config.campaignIntervalMs, (inputs.quiet?.untilMs ?? 0) - nowMs),
  });
  if (state.kind === "held") return standBy("held", "held by the coordinator: not campaigning until released");
  if (inputs.recordedHold) return standBy("held", "manual-reconcile hold recorded in the database: not campaigning until a failover names a node");
  if (config.nofailover) return standBy("nofailover", "--nofailover: never campaigns on its own");
  if (inputs.quiet && nowMs < inputs.quiet.untilMs) {
    return inputs.quiet.why === "startup_grace"
      ? standBy("startup_grace", "startup grace: leaving the first word to the coordinator")
      : standBy("resign_backoff", "resigned: staying out of the race so the chosen successor wins");
  }
  if (config.successor) return { kind: "lock_wait", waitMs: config.lockWaitSliceMs, reason: "--successor: waiting on the lock" };
  // Alone, every follower queues on the lock as the floor's agents do: the
  // first in the queue is granted it the instant the leader's session ends.
  // Under a coordinator only its designated successor queues (it weighs
  // priority and lag); the others try a free lock now and then as a backstop.
  if (!inputs.coordinatorConnected) {
    return { kind: "lock_wait", waitMs: config.lockWaitSliceMs, reason: "no coordinator connected: waiting on the lock (the first in its queue leads next)" };
  }
  const intervalMs = coordinatedCampaignIntervalMs(config.campaignIntervalMs);
  return {
    kind: "campaign",
    inMs: Math.max(0, inputs.nextCampaignMs - nowMs),
    intervalMs,
    reason: `coordinator connected: trying a free lock every ${intervalMs}ms as a backstop`,
  };
}

/** What a command comes to, once its epoch guard is checked against leadership_state. */
export type CommandPlan =
  | { readonly kind: "refuse"; readonly message: string; readonly epoch: number }
  /** Resign the term (dropping Write-Ready before the lock), then hold if asked. */
  | { readonly kind: "resign"; readonly hold: boolean }
  | { readonly kind: "already_leader"; readonly epoch: number; readonly floor: number }
  /** Try the lock once; campaign_wait queues on it for waitMs instead. */
  | { readonly kind: "campaign_now"; readonly floor: number }
  | { readonly kind: "campaign_wait"; readonly floor: number; readonly waitMs: number }
  | { readonly kind: "hold"; readonly resign: boolean }
  | { readonly kind: "release" };

/**
 * Commands are epoch-guarded: one issued for another term than the one
 * leadership_state names now does nothing. `observedEpoch` is read just
 * before the command runs.
 */
export function decideCommand(command: NodeCommand, observedEpoch: number, state: ElectionState): CommandPlan {
  const term = termOf(state);
  if (command.epoch !== observedEpoch) {
    return { kind: "refuse", epoch: term?.epoch ?? 0, message: `epoch guard: command is for epoch ${command.epoch}, current epoch is ${observedEpoch}` };
  }
  const action = command.action;
  switch (action.kind) {
    case "resign":
      return term ? { kind: "resign", hold: action.hold } : { kind: "refuse", epoch: 0, message: "not the leader" };
    case "campaign": {
      const refusal = campaignFloorRefusal(action.epochFloor, Math.max(observedEpoch, term?.epoch ?? 0));
      if (refusal) return { kind: "refuse", epoch: term?.epoch ?? 0, message: `campaign refused: ${refusal}` };
      if (term) return { kind: "already_leader", epoch: term.epoch, floor: action.epochFloor };
      return action.waitMs <= 0 ? { kind: "campaign_now", floor: action.epochFloor } : { kind: "campaign_wait", floor: action.epochFloor, waitMs: action.waitMs };
    }
    case "hold":
      return { kind: "hold", resign: term !== undefined };
    case "release":
      return { kind: "release" };
  }
}

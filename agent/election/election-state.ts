import type { CommandOutcome, NodeCommand, NodeRole } from "../../core/model.js";
import type { Term } from "./readiness.js";

/** A campaign the coordinator ordered and that is still waiting on the lock. */
export interface StandingCampaign {
  readonly command: NodeCommand;
  /** Monotonic time at which the wait ends. */
  readonly untilMs: number;
  readonly floor: number;
  readonly done: (outcome: CommandOutcome) => void;
}

/**
 * Where this node stands in the election. Exactly one at a time, so a node
 * cannot be held and leading, or fenced and campaigning. Whether the lock
 * session is alive is separate: a held node stays held across a reconnect.
 *
 * - follower: may campaign on its own (within the grace and backstop rules);
 * - campaigning: waits on the lock because the coordinator ordered it;
 * - leader: holds the lock and a term;
 * - fenced: lost its term without resigning (lease or session); a fresh lock
 *   session makes it a follower again;
 * - held: ordered not to campaign until released.
 */
export type ElectionState =
  | { readonly kind: "follower" }
  | { readonly kind: "campaigning"; readonly standing: StandingCampaign }
  | { readonly kind: "leader"; readonly term: Term }
  | { readonly kind: "fenced"; readonly epoch: number }
  | { readonly kind: "held" };

export const follower: ElectionState = { kind: "follower" };
export const held: ElectionState = { kind: "held" };

export function termOf(state: ElectionState): Term | undefined {
  return state.kind === "leader" ? state.term : undefined;
}

/** The role a report shows: a node without a lock session is disconnected unless it leads or was fenced. */
export function roleOf(state: ElectionState, sessionAlive: boolean): NodeRole {
  if (state.kind === "leader") return "leader";
  if (state.kind === "fenced") return "fenced";
  if (!sessionAlive) return "disconnected";
  if (state.kind === "held") return "held";
  return "follower";
}

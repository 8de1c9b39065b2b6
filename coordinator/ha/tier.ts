import { ErrorCode, HaError } from "../../core/errors.js";
import { ACTIVE_COORDINATOR_TRAILER, COORDINATOR_ROLE_TRAILER } from "../../rpc/failover-transport.js";
import type { CoordinatorRole } from "./coordinator-lease.js";

/** What the admin services need of the coordinator tier. */
export interface CoordinatorTier {
  /** This coordinator's role now. */
  role(): CoordinatorRole;
  /** Whether this coordinator may act now (active, lease renewed, engine acting). */
  acting(): boolean;
}

/** A single coordinator outside any tier (tests, embedded use): always active. */
export function soleCoordinator(coordinatorId = "autonomy-coordinator"): CoordinatorTier {
  const role: CoordinatorRole = { role: "active", term: 0, coordinatorId, activeUrl: "", activeId: coordinatorId };
  return { role: () => role, acting: () => true };
}

/**
 * The refusal a standby gives a mutation: UNAVAILABLE (retry elsewhere), with
 * the active coordinator's URL in the message and in a trailer, so the CLI
 * and agents listing several coordinators go there with the same request.
 */
export function notActive(role: CoordinatorRole, what: string): HaError {
  const where = role.activeUrl
    ? `the active coordinator is ${role.activeId} at ${role.activeUrl} (term ${role.term}); send it there, or list every coordinator in --orchestrator-url`
    : "no coordinator is active right now (a takeover is under way); retry in a moment";
  return new HaError(ErrorCode.Unavailable, `${what}: this coordinator (${role.coordinatorId}) is a standby; ${where}`, {
    trailers: { [COORDINATOR_ROLE_TRAILER]: "standby", ...(role.activeUrl ? { [ACTIVE_COORDINATOR_TRAILER]: role.activeUrl } : {}) },
  });
}

/** Whether an error is a standby's refusal (the request was not done here). */
export function isNotActive(err: unknown): boolean {
  return err instanceof HaError && err.trailers?.[COORDINATOR_ROLE_TRAILER] === "standby";
}

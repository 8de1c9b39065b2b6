import { MAX_EPOCH, MAX_EPOCH_JUMP } from "../../db/leadership.js";

/**
 * Why a Campaign's epoch_floor is refused, or undefined when it may be taken.
 * The floor must be a bigint and at most MAX_EPOCH_JUMP above `confirmed`, the
 * highest epoch this agent confirmed in its own lock database: a coordinator
 * (or anyone posing as one) cannot push this node's terms out of reach.
 */
export function campaignFloorRefusal(floor: number, confirmed: number): string | undefined {
  if (!Number.isFinite(floor) || floor < 0 || !Number.isInteger(floor) || BigInt(floor) > MAX_EPOCH) {
    return `epoch_floor ${floor} is not an epoch: it must be a whole number from 0 to ${MAX_EPOCH} (bigint)`;
  }
  if (floor > confirmed + MAX_EPOCH_JUMP) {
    return `epoch_floor ${floor} is more than ${MAX_EPOCH_JUMP} above epoch ${confirmed}, the highest epoch confirmed in the lock database`;
  }
  return undefined;
}

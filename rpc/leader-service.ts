import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { LeaderEventKind as WireKind, LeaderService, WatchLeaderResponseSchema } from "../gen/autonomy/ha/v1/leader_pb.js";
import type { LeaderEvent, LeaderEventKind, LeaderEventLog } from "../core/leader-event-log.js";
import { LeaderFanout } from "./leader-fanout.js";
import { DirectStream } from "./direct-stream.js";
import { Encoded, registration, type ServiceRegistration } from "./service-adapter.js";
import { leaderToWire } from "./wire.js";

const kinds: Record<LeaderEventKind, WireKind> = {
  snapshot: WireKind.SNAPSHOT,
  leader_changed: WireKind.LEADER_CHANGED,
  write_ready_changed: WireKind.WRITE_READY_CHANGED,
  leader_lost: WireKind.LEADER_LOST,
  split_brain_detected: WireKind.SPLIT_BRAIN_DETECTED,
  split_brain_resolved: WireKind.SPLIT_BRAIN_RESOLVED,
};

export function leaderEventToWire(e: LeaderEvent) {
  return { revision: BigInt(e.revision), kind: kinds[e.kind], leader: leaderToWire(e.leader), at: timestampFromDate(e.at), message: e.message };
}

/** Each event is encoded once, however many watchers it goes to. */
const encodedEvents = new WeakMap<LeaderEvent, Encoded>();
function encodedEvent(e: LeaderEvent): Encoded {
  let bytes = encodedEvents.get(e);
  if (!bytes) encodedEvents.set(e, (bytes = Encoded.of(WatchLeaderResponseSchema, leaderEventToWire(e))));
  return bytes;
}

export interface LeaderServiceOptions {
  readonly now: () => Date;
  /** Throws for a request naming another cluster. */
  readonly checkCluster?: (clusterId: string) => void;
  /** Told of every watcher that starts (+1) and ends (-1). */
  readonly onWatcher?: (delta: 1 | -1) => void;
}

/**
 * LeaderService over one leader-event log: the agent serves its node's view,
 * the coordinator the cluster's. A watcher gets the current leader first,
 * then every change in order, with rising revisions.
 */
export function leaderServiceFor(events: LeaderEventLog, options: LeaderServiceOptions): ServiceRegistration {
  // One fan-out for all of this service's watchers; see leader-fanout.ts.
  const fanout = new LeaderFanout(events, encodedEvent);
  return registration(LeaderService, {
    getLeader: async (req) => {
      options.checkCluster?.(req.clusterId);
      return { leader: leaderToWire(events.leader), revision: BigInt(events.lastRevision), observedAt: timestampFromDate(options.now()) };
    },
    watchLeader: (req, ctx) => {
      options.checkCluster?.(req.clusterId);
      options.onWatcher?.(1);
      // A watch ends only when its call does.
      ctx.signal.addEventListener("abort", () => options.onWatcher?.(-1), { once: true });
      return new DirectStream((sink, signal) => fanout.attach(sink, signal));
    },
  });
}

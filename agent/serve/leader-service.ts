
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { LeaderEventKind as WireKind, LeaderService } from "../../gen/autonomy/ha/v1/leader_pb.js";
import { noLeader } from "../../core/model.js";
import { registration, type ServiceRegistration } from "../../rpc/service-adapter.js";
import { leaderToWire } from "../../rpc/wire.js";
import type { LeaderEventKind, LeaderFeed } from "./leader-feed.js";

const kinds: Record<LeaderEventKind, WireKind> = {
  snapshot: WireKind.SNAPSHOT,
  leader_changed: WireKind.LEADER_CHANGED,
  write_ready_changed: WireKind.WRITE_READY_CHANGED,
  leader_lost: WireKind.LEADER_LOST,
};

/** LeaderService for the colocated control-plane process: follow leadership without polling. */
export function leaderServiceFor(leaders: LeaderFeed, now: () => Date): ServiceRegistration {
  return registration(LeaderService, {
    getLeader: async () => ({
      leader: leaderToWire(leaders.current ?? noLeader),
      revision: BigInt(leaders.feed.currentRevision),
      observedAt: timestampFromDate(now()),
    }),
    async *watchLeader(_request, ctx) {
      const snapshot = () => ({ kind: "snapshot" as const, leader: leaders.current ?? noLeader, at: now(), message: "current leader" });
      for await (const event of leaders.feed.subscribe(snapshot, ctx.signal)) {
        yield {
          revision: BigInt(event.revision),
          kind: kinds[event.value.kind],
          leader: leaderToWire(event.value.leader),
          at: timestampFromDate(event.value.at),
          message: event.value.message,
        };
      }
    },
  });
}


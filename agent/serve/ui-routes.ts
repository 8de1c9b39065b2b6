import type { Clock } from "../../core/clock.js";
import type { LeaderEventLog } from "../../core/leader-event-log.js";
import type { NodeReport } from "../../core/model.js";
import { leaderJson, writeReadyJson } from "../../rpc/health-json.js";
import type { HttpRouter, StreamWriter } from "../../rpc/http-router.js";
import { leaderEventJson, sseEvent, SSE_CONTENT_TYPE, staticAsset } from "../../rpc/web-assets.js";

const here = new URL("./ui/", import.meta.url);
/** The node page, its script and its stylesheet: every byte the browser needs. */
export const nodePageAssets = [staticAsset(here, "index.html", "/"), staticAsset(here, "app.js", "/ui/node.js"), staticAsset(here, "style.css", "/ui/style.css")];

export interface NodeEventSources {
  readonly report: () => NodeReport;
  readonly leaders: LeaderEventLog;
  readonly clock: Clock;
}

/** What the node page shows: the /v1/health/leader and /write-ready answers, and its own server's lag. */
function nodeJson(r: NodeReport) {
  return {
    ...leaderJson(r),
    write_ready_detail: writeReadyJson(r),
    local: r.localDatabase
      ? { reachable: r.localDatabase.reachable, in_recovery: r.localDatabase.inRecovery, replay_lag_seconds: r.localDatabase.replayLagSeconds, lag_status: r.localDatabase.lagStatus, error: r.localDatabase.error ?? "" }
      : null,
    database_error: r.databaseError,
  };
}

async function streamNodeEvents(src: NodeEventSources, write: StreamWriter, signal: AbortSignal): Promise<void> {
  write("retry: 2000\n\n");
  const leaders = (async () => {
    for await (const e of src.leaders.watch(signal)) {
      write(sseEvent("leader", leaderEventJson(e)));
      write(sseEvent("node", nodeJson(src.report())));
    }
  })();
  try {
    while (!signal.aborted) {
      write(sseEvent("node", nodeJson(src.report())));
      await src.clock.sleep(1_000, signal).catch(() => undefined);
    }
  } finally {
    await leaders.catch(() => undefined);
  }
}

/** The agent's own small page at / (docs/web-view.md): read-only, live from this node's events. */
export function addNodeUi(router: HttpRouter, src: NodeEventSources): HttpRouter {
  const [page, ...assets] = nodePageAssets;
  router.get("/", () => page!.reply()).get("/ui", () => page!.reply());
  for (const a of assets) router.get(a.path, () => a.reply());
  return router.get("/v1/events", () => ({ contentType: SSE_CONTENT_TYPE, stream: (write, signal) => streamNodeEvents(src, write, signal) }));
}

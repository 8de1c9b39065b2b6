import { hasRole } from "../../../rpc/auth/principal.js";
import type { HttpRequest, HttpRouter } from "../../../rpc/http-router.js";
import { asPreconditionRefusal, invalidArgument } from "../../../core/errors.js";
import { requireRequester } from "../operation-context.js";
import { plannedFailover } from "../planned-failover.js";
import { staticAsset, SSE_CONTENT_TYPE } from "../../../rpc/web-assets.js";
import { streamClusterEvents, type ClusterEventSources } from "./cluster-events.js";
import { boolField, requireSameOriginJson, textField } from "./requests.js";

const here = new URL(".", import.meta.url);
/** The page and its two assets: every byte the browser needs. */
export const clusterPageAssets = [staticAsset(here, "index.html", "/"), staticAsset(here, "app.js", "/ui/app.js"), staticAsset(here, "style.css", "/ui/style.css")];

/** As the gRPC side writes it (callerOf), marked as coming from the web view. */
const callerOf = (req: HttpRequest) => `${req.principal.name} (${req.peer}, web view)`;

/**
 * The coordinator's live web view: the page (at / and /ui), its event stream,
 * who the caller is, and the two actions — planned failover and pause/resume —
 * through the same audited operations as `autonomy ha failover trigger` and
 * `autonomy ha pause|resume`. rpc/auth/access.ts makes /v1/admin/* admin-only.
 */
export function addClusterUi(router: HttpRouter, src: ClusterEventSources): HttpRouter {
  const { ctx } = src;
  const [page, ...assets] = clusterPageAssets;
  router.get("/", () => page!.reply()).get("/ui", () => page!.reply());
  for (const a of assets) router.get(a.path, () => a.reply());
  return router
    .get("/v1/events", () => ({ contentType: SSE_CONTENT_TYPE, stream: (write, signal) => streamClusterEvents(src, write, signal) }))
    .get("/v1/ui/session", (req) => ({
      json: { principal: req.principal.name, admin: hasRole(req.principal, "admin"), cluster_id: ctx.policy.clusterId, answered_by: "coordinator" },
    }))
    .post("/v1/admin/failover", async (req) => {
      const body = requireSameOriginJson(req);
      const who = requireRequester(textField(body, "operator"), textField(body, "reason"), callerOf(req));
      const r = await plannedFailover(ctx, {
        ...who,
        force: boolField(body, "force") ?? false,
        targetNode: textField(body, "target_node").trim(),
        expectedLeader: textField(body, "expected_leader").trim(),
        forwardedBy: "",
      }).catch((err: unknown) => Promise.reject(asPreconditionRefusal(err)));
      return {
        json: {
          success: true,
          previous_holder: r.previousHolder,
          previous_epoch: r.previousEpoch,
          new_holder: r.newHolder,
          new_epoch: r.newEpoch,
          message: r.message,
          request_id: r.requestId,
        },
      };
    })
    .post("/v1/admin/maintenance", async (req) => {
      const body = requireSameOriginJson(req);
      const paused = boolField(body, "paused");
      if (paused === undefined) throw invalidArgument("paused (true or false) is required");
      const who = requireRequester(textField(body, "operator"), textField(body, "reason"), callerOf(req));
      const r = await ctx.engine.setMaintenance(paused, who);
      return { json: { paused: r.paused, message: r.notAudited ? `${r.message}; WARNING: ${r.notAudited}` : r.message } };
    });
}

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readAuditEvents } from "../../coordinator/audit/index.js";
import { startCoordinator, type RunningCoordinator } from "../../coordinator/start-coordinator.js";
import { clusterPageAssets } from "../../coordinator/live/ui/ui-routes.js";
import { nodePageAssets } from "../../agent/serve/ui-routes.js";
import { startPgCluster, type PgCluster } from "../../pgcluster/index.js";
import { Authenticator } from "../../rpc/auth/authenticator.js";
import { TokenStore } from "../../rpc/auth/tokens.js";
import { TEST_POLICY } from "../coordinator/support/harness.js";

/*
 * The web view on a coordinator that takes bearer tokens: a reader sees the
 * page and the stream but no actions; only an admin may POST one, only as
 * JSON from the page's own origin, and what it does is audited with its name.
 */

const READ_TOKEN = "read-token-0123456789abcdef";
const ADMIN_TOKEN = "admin-token-0123456789abcdef";

describe("web view access on a coordinator with tokens", () => {
  let pg: PgCluster;
  let coordinator: RunningCoordinator;
  let dir: string;

  beforeAll(async () => {
    pg = await startPgCluster({ standbys: 0 });
    dir = mkdtempSync(join(tmpdir(), "autonomy-ui-access-"));
    writeFileSync(join(dir, "tokens"), `reader read ${READ_TOKEN}\nops admin ${ADMIN_TOKEN}\n`);
    coordinator = await startCoordinator({
      databaseUrl: pg.primary.url(),
      port: 0,
      auditDir: join(dir, "audit"),
      schema: `ui_${process.pid}`,
      policy: { ...TEST_POLICY, clusterId: `ui-${process.pid}` },
      security: { auth: new Authenticator(undefined, new TokenStore(join(dir, "tokens"))), insecureListen: false, healthListen: undefined },
    });
  });
  afterAll(async () => {
    await coordinator?.stop();
    await pg?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const call = (path: string, token: string | undefined, init: RequestInit = {}) =>
    fetch(`${coordinator.url}${path}`, { ...init, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(init.headers as Record<string, string>) } });
  const post = (path: string, token: string, body: unknown, headers: Record<string, string> = { "content-type": "application/json" }) =>
    call(path, token, { method: "POST", body: JSON.stringify(body), headers });

  it("needs credentials for the page, and tells a reader it is read-only", async () => {
    expect((await call("/", undefined)).status).toBe(401);
    const page = await call("/", READ_TOKEN);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
    expect(page.headers.get("content-security-policy")).toContain("default-src 'self'");
    expect(await page.text()).toContain('src="/ui/app.js"');
    expect(await (await call("/v1/ui/session", READ_TOKEN)).json()).toMatchObject({ principal: "token:reader", admin: false });
    expect(await (await call("/v1/ui/session", ADMIN_TOKEN)).json()).toMatchObject({ principal: "token:ops", admin: true });
  });

  it("refuses a reader's action with 403 before it reaches the operation", async () => {
    const r = await post("/v1/admin/maintenance", READ_TOKEN, { paused: true, operator: "rita", reason: "try" });
    expect(r.status).toBe(403);
    expect(((await r.json()) as { error: string }).error).toContain("needs the admin role");
    // Any method but GET/HEAD needs admin, whatever the path.
    expect((await post("/v1/events", READ_TOKEN, {})).status).toBe(403);
  });

  it("refuses an admin's action that is not same-origin JSON", async () => {
    const form = await post("/v1/admin/maintenance", ADMIN_TOKEN, { paused: true, operator: "o", reason: "r" }, { "content-type": "text/plain" });
    expect(form.status).toBe(400);
    const foreign = await post("/v1/admin/maintenance", ADMIN_TOKEN, { paused: true, operator: "o", reason: "r" }, { "content-type": "application/json", origin: "http://evil.example" });
    expect(foreign.status).toBe(403);
    const noReason = await post("/v1/admin/maintenance", ADMIN_TOKEN, { paused: true, operator: "o" });
    expect(noReason.status).toBe(400);
    expect(((await noReason.json()) as { error: string }).error).toContain("reason is required");
  });

  it("pauses and resumes for an admin, audited with the operator, the reason and the token's name", async () => {
    const paused = await post("/v1/admin/maintenance", ADMIN_TOKEN, { paused: true, operator: "olga", reason: "disk swap" });
    expect(paused.status).toBe(200);
    expect(await paused.json()).toMatchObject({ paused: true });
    const resumed = await post("/v1/admin/maintenance", ADMIN_TOKEN, { paused: false, operator: "olga", reason: "done" });
    expect(await resumed.json()).toMatchObject({ paused: false });
    const { events } = await readAuditEvents(join(dir, "audit"), { limit: 100 });
    const pause = events.find((e) => e.type === "ha.maintenance.paused");
    expect(pause).toMatchObject({ operator: "olga", reason: "disk swap" });
    expect(pause?.caller).toMatch(/^token:ops \(.*web view\)$/);
    expect(events.some((e) => e.type === "ha.maintenance.resumed" && e.reason === "done")).toBe(true);
  });

  it("streams server-sent events: the leader first, then a status with the database reading", async () => {
    const seen = await new Promise<string>((resolve, reject) => {
      const req = request(`${coordinator.url}/v1/events`, { headers: { authorization: `Bearer ${READ_TOKEN}` } }, (res) => {
        expect(res.headers["content-type"]).toContain("text/event-stream");
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          text += chunk;
          if (text.includes("event: leader") && text.includes("event: status") && text.includes("event: audit") && text.includes("event: history")) {
            req.destroy();
            resolve(text);
          }
        });
        res.on("error", () => undefined);
      });
      req.on("error", (err) => (err.message.includes("aborted") ? undefined : reject(err)));
      req.end();
    });
    const status = JSON.parse(/event: status\ndata: (.*)\n/.exec(seen)![1]!) as { database_reachable: boolean; cluster_id: string };
    expect(status).toMatchObject({ database_reachable: true, cluster_id: `ui-${process.pid}` });
    expect(seen.indexOf("event: leader")).toBeLessThan(seen.indexOf("event: audit"));
  });

  it("serves every asset itself, small", () => {
    const total = (assets: { bytes: number }[]) => assets.reduce((n, a) => n + a.bytes, 0);
    // docs/web-view.md states these sizes; keep them in step.
    expect(total(clusterPageAssets)).toBeLessThan(40 * 1024);
    expect(total(nodePageAssets)).toBeLessThan(16 * 1024);
    for (const a of [...clusterPageAssets, ...nodePageAssets]) expect(a.reply()).not.toHaveProperty("text", expect.stringMatching(/https?:\/\/(?!www\.w3\.org)/));
  });
});

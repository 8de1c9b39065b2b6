import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../core/clock.js";
import { alive, DevRun } from "../support/dev-cluster.js";
import { Browser, type Page } from "./support/browser.js";

/*
 * The web view in a real headless chromium against `autonomy dev` (real
 * PostgreSQL, coordinator and agent processes). The page stays open the whole
 * time: every change it shows came over its event stream, never a reload.
 */

// The screenshots in docs/ are made by this test: UPDATE_SCREENSHOTS=1
// writes them there; otherwise they go to a temp dir, so a test run leaves the
// tree as it found it.
const SHOTS = process.env.UPDATE_SCREENSHOTS === "1" ? new URL("../../docs/", import.meta.url) : pathToFileURL(`${mkdtempSync(join(tmpdir(), "autonomy-ui-"))}/`);
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Writes a screenshot and checks it is a PNG of the fixed size (width and height are in its IHDR). */
function keep(name: string, png: Buffer): void {
  expect(png.subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
  expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([1280, 900]);
  writeFileSync(new URL(name, SHOTS), png);
}

describe("the web view follows the cluster live", () => {
  let dev: DevRun;
  let browser: Browser;
  let page: Page;
  let first: { holder_id: string; current_epoch: number };

  beforeAll(async () => {
    dev = await DevRun.start({ agents: 3 });
    await dev.settled();
    browser = Browser.launch();
  });
  afterAll(async () => {
    // The cluster is stopped whatever closing the browser does.
    try {
      await browser?.close();
    } finally {
      await dev?.stopAndExpectClean();
    }
  }, 90_000);

  it("shows the current leader and its epoch, every node, and the CLI commands that show the same", async () => {
    first = await dev.writeReadyLeader();
    page = await browser.open(`${dev.coordinatorUrl}/`);
    await page.until(`the page to show leader ${first.holder_id}`, async () => (await page.text("#leader")) === first.holder_id);
    expect(await page.text("#epoch")).toBe(String(first.current_epoch));
    expect(await page.text("#write-ready")).toContain("Write-Ready");
    expect(await page.text("#database")).toContain("reachable");
    const nodes = await page.until("three node rows", async () => {
      const n = await page.eval<string[]>(`[...document.querySelectorAll("#nodes tbody tr")].map((r) => r.dataset.node)`);
      return n.length === 3 ? n : undefined;
    });
    expect(nodes.sort()).toEqual(dev.d.agents.map((a) => a.node_id).sort());
    expect(await page.eval<number>(`document.querySelectorAll("#nodes svg.spark").length`)).toBe(3);
    await page.until("the terms table", async () => (await page.text("#terms tbody")).includes(first.holder_id));
    const cli = await page.eval<string[]>(`[...document.querySelectorAll(".cli code")].map((c) => c.textContent)`);
    expect(cli).toContain(`autonomy ha status --orchestrator-url ${dev.coordinatorUrl}`);
    expect(cli).toContain(`autonomy ha history --orchestrator-url ${dev.coordinatorUrl}`);
    // No credentials configured on loopback: the caller may do everything, so the actions show.
    await page.until("the admin actions", async () => !(await page.eval<boolean>(`document.getElementById("admin").hidden`)));
    // A marker that a reload would wipe.
    await page.eval(`window.keptSinceLoad = true`);
  });

  it("takes screenshots in light and dark mode at 1280x900", async () => {
    await page.until("the audit tail", async () => (await page.eval<number>(`document.querySelectorAll("#audit tbody tr").length`)) > 0);
    keep("ui-light.png", await page.screenshot());
    await page.scheme("dark");
    const dark = await page.eval<string>(`getComputedStyle(document.body).backgroundColor`);
    expect(dark).toBe("rgb(13, 17, 23)");
    keep("ui-dark.png", await page.screenshot());
    await page.scheme("light");
    expect(await page.eval<string>(`getComputedStyle(document.body).backgroundColor`)).toBe("rgb(255, 255, 255)");
  });

  it("an agent's port serves its own node's page", async () => {
    const agent = dev.agent(first.holder_id);
    const nodePage = await browser.open(`${agent.url}/`);
    await nodePage.until("the node page to show its role", async () => (await nodePage.text("#role")) === "leader");
    expect(await nodePage.text("#node-id")).toBe(first.holder_id);
    expect(await nodePage.text("#write-ready")).toContain("Write-Ready");
    expect(await nodePage.text("#leader")).toBe(first.holder_id);
    await nodePage.send("Page.close");
  });

  it("after a SIGKILL of the leader's agent it shows the new leader and term without a reload", async () => {
    const victim = dev.agent(first.holder_id);
    process.kill(victim.pid!, "SIGKILL");
    await waitFor(() => !alive(victim.pid), { timeoutMs: 5_000, what: `${first.holder_id}'s agent to die` });
    const next = await dev.writeReadyLeader(30_000, first.current_epoch);
    await page.until(`the page to show leader ${next.holder_id}, epoch ${next.current_epoch}`, async () =>
      (await page.text("#leader")) === next.holder_id && (await page.text("#epoch")) === String(next.current_epoch),
    );
    expect(await page.eval<boolean>(`window.keptSinceLoad === true`)).toBe(true);
    await page.until(`the killed node's row to say it is gone`, async () => /disconnected|stale/.test(await page.text(`#nodes tr[data-node="${first.holder_id}"]`)));
    // The term that ended is in the timeline with the reason it ended.
    await page.until("the ended term in the terms table", async () => (await page.text("#terms tbody")).includes(next.holder_id));
    await page.until("the automatic failover in the audit tail, by operator system", async () =>
      page.eval<boolean>(`[...document.querySelectorAll("#audit tbody tr")].some((r) => r.dataset.type === "ha.failover.automatic" && r.querySelector(".operator").textContent === "system")`),
    );
  });

  it("a planned failover from the page asks for a reason and lands in the audit tail with its operator", async () => {
    const before = await dev.writeReadyLeader();
    await page.eval(`document.getElementById("btn-failover").click()`);
    expect(await page.eval<boolean>(`document.getElementById("dialog").open`)).toBe(true);
    await page.eval(`(() => {
      document.getElementById("f-operator").value = "web-tester";
      document.getElementById("f-reason").value = "web view test";
      document.getElementById("f-submit").click();
    })()`);
    const result = await page.until("the failover's answer", async () => {
      const t = await page.text("#action-result");
      return t.startsWith("✔") || t.startsWith("✘") ? t : undefined;
    }, 45_000);
    expect(result).toMatch(/^✔/);
    const after = await dev.writeReadyLeader(30_000, before.current_epoch);
    await page.until(`the page to show leader ${after.holder_id}`, async () => (await page.text("#leader")) === after.holder_id && (await page.text("#epoch")) === String(after.current_epoch));
    await page.until("the planned failover in the audit tail with operator web-tester", async () =>
      page.eval<boolean>(`[...document.querySelectorAll("#audit tbody tr")].some((r) => r.dataset.type === "ha.failover.completed" && r.querySelector(".operator").textContent === "web-tester" && r.textContent.includes("web view test"))`),
    );
    const audited = dev.auditEvents().find((e) => e.type === "ha.failover.completed" && e.operator === "web-tester");
    expect(JSON.stringify(audited)).toContain("web view");
    expect(await page.eval<boolean>(`window.keptSinceLoad === true`)).toBe(true);
  });

  it("a split-brain finding appears in the findings timeline and the leader panel, and goes when it is resolved", async () => {
    const leader = await dev.writeReadyLeader();
    const previous = leader.current_epoch - 1;
    // Two open terms: the previous epoch reopened under the current one (runbook 002's "unclosed epochs").
    await dev.sql(dev.primaryUrl, "UPDATE leader_epochs SET resigned_at = NULL, end_reason = NULL WHERE cluster_id = 'default' AND epoch = $1", [previous]);
    try {
      await page.until("the split-brain in the leader panel", async () => (await page.text("#split-brain")).includes("detected"));
      await page.until("the finding in the findings timeline", async () => (await page.text("#findings")).includes("ha.split_brain.detected"));
      expect(await page.text("#findings")).toContain("unclosed_epochs");
    } finally {
      await dev.sql(dev.primaryUrl, "UPDATE leader_epochs SET resigned_at = now(), end_reason = 'superseded' WHERE cluster_id = 'default' AND epoch = $1", [previous]);
    }
    await page.until("the split-brain to clear", async () => (await page.text("#split-brain")).includes("none"));
    await page.until("the resolution in the findings timeline", async () => (await page.text("#findings")).includes("ha.split_brain.resolved"));
    expect(await page.eval<boolean>(`window.keptSinceLoad === true`)).toBe(true);
  });
});

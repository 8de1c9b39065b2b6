import { appendFile, mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../core/clock.js";
import { AuditLog, AUDIT_FILE, readAuditEvents } from "../../coordinator/audit/index.js";

describe("audit log: one JSON line per event, queried without a server", () => {
  let dir: string;
  let clock: ManualClock;
  let log: AuditLog;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "autonomy-audit-"));
    clock = new ManualClock(new Date("2026-03-18T10:00:00Z"));
    log = new AuditLog(path.join(dir, "nested"), "default", clock);
  });
  afterEach(async () => {
    await log.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("writes every field as one line, in order, creating the directory", async () => {
    await log.append({ type: "ha.failover.completed", operator: "alice", reason: "patching", request_id: "r1", caller: "cli (127.0.0.1:5)", node_id: "cp-node-2", epoch: 8, message: "ok", evidence: { previous_epoch: 7 } });
    clock.advance(1000);
    await log.append({ type: "ha.split_brain.detected", message: "found" });
    const lines = (await readFile(path.join(dir, "nested", AUDIT_FILE), "utf8")).trim().split("\n");
    expect(lines).toHaveLength(2);
    const first = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(first).toMatchObject({
      time: "2026-03-18T10:00:00.000Z", category: "ha", type: "ha.failover.completed", operator: "alice", reason: "patching",
      request_id: "r1", caller: "cli (127.0.0.1:5)", node_id: "cp-node-2", epoch: 8, cluster_id: "default", message: "ok", evidence: { previous_epoch: 7 },
    });
    expect(first.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(JSON.parse(lines[1]!)).toMatchObject({ operator: "system", type: "ha.split_brain.detected", time: "2026-03-18T10:00:01.000Z" });
  });

  it("filters by category, type, since and cluster, and returns the newest N oldest first", async () => {
    for (let i = 0; i < 5; i++) {
      await log.append({ type: i % 2 ? "ha.leader.changed" : "ha.failover.completed", epoch: i });
      clock.advance(1000);
    }
    await log.append({ type: "app.deploy", category: "app", epoch: 99 });
    const all = await readAuditEvents(path.join(dir, "nested"), { category: "ha" });
    expect(all.events.map((e) => e.epoch)).toEqual([0, 1, 2, 3, 4]);
    expect((await readAuditEvents(path.join(dir, "nested"), { category: "ha", limit: 2 })).events.map((e) => e.epoch)).toEqual([3, 4]);
    expect((await readAuditEvents(path.join(dir, "nested"), { type: "ha.leader.changed" })).events.map((e) => e.epoch)).toEqual([1, 3]);
    expect((await readAuditEvents(path.join(dir, "nested"), { since: new Date("2026-03-18T10:00:03Z") })).events.map((e) => e.epoch)).toEqual([3, 4, 99]);
    expect((await readAuditEvents(path.join(dir, "nested"), { clusterId: "other" })).events).toEqual([]);
    expect((await log.query({ category: "app" })).map((e) => e.epoch)).toEqual([99]);
  });

  it("skips a torn or foreign line instead of failing the query", async () => {
    await log.append({ type: "ha.leader.changed" });
    await appendFile(path.join(dir, "nested", AUDIT_FILE), '{"type": "ha.fail');
    // A last line without its newline is one being written: skipped, not an error.
    const torn = await readAuditEvents(path.join(dir, "nested"));
    expect(torn.events).toHaveLength(1);
    expect(torn.skippedLines).toBe(0);
    await appendFile(path.join(dir, "nested", AUDIT_FILE), "\n");
    await log.append({ type: "ha.leader.changed" });
    const broken = await readAuditEvents(path.join(dir, "nested"));
    expect(broken.events).toHaveLength(2);
    expect(broken.skippedLines).toBe(1);
  });

  it("a directory that does not exist yet reads as empty", async () => {
    expect(await readAuditEvents(path.join(dir, "missing"))).toEqual({ events: [], skippedLines: 0, files: 0 });
  });
});

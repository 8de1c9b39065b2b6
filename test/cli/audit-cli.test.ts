import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { at } from "./fixtures.js";
import { OrchestratorStub, runCli } from "./orchestrator-stub.js";

/* `autonomy audit query` (runbook 002 §5), from the audit files and through QueryAudit. */

const line = (o: Record<string, unknown>) => `${JSON.stringify(o)}\n`;

let dir: string;
let stub: OrchestratorStub;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "autonomy-audit-"));
  await writeFile(
    join(dir, "audit-2026-03-17.jsonl"),
    line({ id: "e1", time: "2026-03-17T09:00:00.000Z", category: "app", type: "app.deploy", operator: "ci", message: "deployed" }) +
      line({ id: "e2", time: "2026-03-18T10:05:00.100Z", category: "ha", type: "ha.failover.completed", operator: "alice", reason: "planned maintenance", node_id: "cp-node-1", epoch: 8, message: "cp-node-2 leads epoch 8" }),
  );
  await writeFile(
    join(dir, "audit-2026-03-18.jsonl"),
    line({ id: "e3", time: "2026-03-18T11:00:00.000Z", category: "ha", type: "ha.split_brain.detected", operator: "system", epoch: 8, message: "two lock holders" }) +
      line({ id: "e4", time: "2026-03-18T11:10:00.000Z", category: "ha", type: "ha.split_brain.recovered", operator: "alice", reason: "node-1 stale", node_id: "node-2", epoch: 9, message: "node-2 confirmed", evidence: { resigned: ["node-1"] } }) +
      // The coordinator is mid-write: a partial last line.
      '{"id":"e5","time":"2026-03-18T11:11:00.000Z","category":"ha","type":"ha.fail',
  );
  await writeFile(join(dir, "notes.txt"), "not an audit file\n");
  stub = await OrchestratorStub.start();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await stub?.close();
});
beforeEach(() => stub.reset());

describe("autonomy audit query --audit-dir", () => {
  it("lists the newest N events of a category, one line each, oldest first", async () => {
    const r = await runCli(["audit", "query", "--audit-dir", dir, "--category", "ha", "--limit", "2"]);
    expect(r).toMatchObject({ code: 0, stderr: "" });
    expect(r.stdout).toBe(
      [
        "TIME                  TYPE                      OPERATOR  NODE    EPOCH  DETAILS",
        "2026-03-18T11:00:00Z  ha.split_brain.detected   system    -       8      two lock holders",
        "2026-03-18T11:10:00Z  ha.split_brain.recovered  alice     node-2  9      node-2 confirmed (reason: node-1 stale)",
        "",
      ].join("\n"),
    );
  });

  it("answers an array of events with the file's field names in JSON", async () => {
    const r = await runCli(["audit", "query", "--audit-dir", dir, "--category", "ha", "--limit", "10", "--output", "json"]);
    expect(r.code).toBe(0);
    const events = JSON.parse(r.stdout) as Record<string, unknown>[];
    expect(events.map((e) => e.id)).toEqual(["e2", "e3", "e4"]);
    expect(events[2]).toEqual({
      id: "e4", time: "2026-03-18T11:10:00.000Z", category: "ha", type: "ha.split_brain.recovered", operator: "alice", reason: "node-1 stale",
      request_id: "", caller: "", node_id: "node-2", epoch: 9, cluster_id: "", message: "node-2 confirmed", evidence: { resigned: ["node-1"] },
    });
  });

  it.each([
    { name: "--type", args: ["--type", "ha.failover.completed"], ids: ["e2"] },
    { name: "--since an ISO time", args: ["--since", "2026-03-18T11:00:00Z"], ids: ["e3", "e4"] },
    { name: "no category", args: [], ids: ["e1", "e2", "e3", "e4"] },
  ])("filters with $name", async ({ args, ids }) => {
    const r = await runCli(["audit", "query", "--audit-dir", dir, "--output", "json", ...args]);
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as { id: string }[]).map((e) => e.id)).toEqual(ids);
  });

  it("reads --since as a duration ago", async () => {
    const fresh = await mkdtemp(join(tmpdir(), "autonomy-audit-"));
    await writeFile(
      join(fresh, "audit.jsonl"),
      line({ id: "old", time: "2020-01-01T00:00:00.000Z", type: "ha.failover.completed" }) +
        line({ id: "new", time: new Date(Date.now() - 60_000).toISOString(), type: "ha.failover.completed" }),
    );
    const r = await runCli(["audit", "query", "--audit-dir", fresh, "--since", "1h", "--output", "json"]);
    await rm(fresh, { recursive: true, force: true });
    expect((JSON.parse(r.stdout) as { id: string }[]).map((e) => e.id)).toEqual(["new"]);
  });

  it("reads AUTONOMY_AUDIT_DIR, and says so on stderr when nothing matches", async () => {
    const r = await runCli(["audit", "query", "--category", "db", "--limit", "10"], { AUTONOMY_AUDIT_DIR: dir });
    expect(r).toEqual({ code: 0, stdout: "", stderr: "autonomy audit query: no matching audit events\n" });
  });

  it("fails in one line for a directory that is not there", async () => {
    const r = await runCli(["audit", "query", "--audit-dir", join(dir, "nope"), "--category", "ha"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^autonomy audit query: cannot read audit dir .*nope: .*ENOENT.*; check --audit-dir \/ AUTONOMY_AUDIT_DIR\n$/);
  });

  it.each([
    ["--limit", "0"],
    ["--since", "yesterday-ish"],
  ])("refuses %s %s as a usage error", async (flag, value) => {
    expect((await runCli(["audit", "query", "--audit-dir", dir, flag, value])).code).toBe(2);
  });
});

describe("autonomy audit query through the orchestrator", () => {
  it("calls QueryAudit with the filters and prints the events", async () => {
    stub.script.queryAudit = () => ({
      events: [{ id: "x1", time: at("2026-03-18T10:05:00Z"), category: "ha", type: "ha.failover.completed", operator: "alice", nodeId: "cp-node-1", epoch: 8n, message: "done", evidence: { target: "cp-node-2" } }],
    });
    const r = await runCli(["audit", "query", "--category", "ha", "--limit", "10", "--type", "ha.failover.completed", "--since", "2026-03-18T00:00:00Z"], {
      AUTONOMY_ORCHESTRATOR_URL: stub.url,
    });
    expect(r.code).toBe(0);
    expect(r.stdout.split("\n")[1]).toBe("2026-03-18T10:05:00Z  ha.failover.completed  alice     cp-node-1  8      done");
    const req = stub.callsOf("queryAudit")[0]?.request;
    expect(req).toMatchObject({ category: "ha", limit: 10, type: "ha.failover.completed" });
    expect(Number(req.since.seconds)).toBe(Date.parse("2026-03-18T00:00:00Z") / 1000);
  });

  it("prefers an explicit --orchestrator-url over AUTONOMY_AUDIT_DIR", async () => {
    stub.script.queryAudit = () => ({ events: [] });
    const r = await runCli(["audit", "query", "--orchestrator-url", stub.url, "--output", "json"], { AUTONOMY_AUDIT_DIR: dir });
    expect(r).toMatchObject({ code: 0, stdout: "[]\n" });
    expect(stub.callsOf("queryAudit")).toHaveLength(1);
  });
});

import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { failedPrecondition } from "../../core/errors.js";
import { AUDIT_FILE, type AuditEvent } from "../../coordinator/audit/index.js";
import { LeaderEventKind } from "../../gen/autonomy/ha/v1/leader_pb.js";
import { labelled, oneLine, table, visible } from "../../cli/output/format.js";
import { watchText } from "../../cli/output/watch.js";
import { create } from "@bufbuild/protobuf";
import { WatchLeaderResponseSchema } from "../../gen/autonomy/ha/v1/leader_pb.js";
import { SplitBrainCriterionSchema } from "../../gen/autonomy/ha/v1/admin_pb.js";
import { at, seedDetect, seedFailover, seedRecover, statusWithNodes } from "./fixtures.js";
import { OrchestratorStub, runCli } from "./orchestrator-stub.js";

/** Anything a terminal would act on, except the newline that ends each printed line. */
// eslint-disable-next-line no-control-regex
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

/** A value crafted to forge a row, clear the screen, ring the bell and retitle the terminal. */
const HOSTILE = "mallory\r\n2026-01-01T00:00:00Z  ha.failover.completed  root\x1b[2J\x07\x00\x7f\u0085\u009b31m\u202eevil\x1b]0;owned\x07";

describe("visible: control characters shown, not obeyed", () => {
  it.each([
    { name: "plain text is unchanged", input: "alice: patching cp-node-1 (ticket #42)", want: "alice: patching cp-node-1 (ticket #42)" },
    { name: "non-ASCII letters are kept", input: "José — Zürich 東京", want: "José — Zürich 東京" },
    { name: "newline, carriage return and tab get their short escapes", input: "a\nb\rc\td", want: "a\\nb\\rc\\td" },
    { name: "ESC, BEL and NUL", input: "\x1b[31mred\x07\x00", want: "\\x1b[31mred\\x07\\x00" },
    { name: "DEL", input: "x\x7fy", want: "x\\x7fy" },
    { name: "C1 controls: NEL and CSI", input: "\u0085\u009b2J", want: "\\u0085\\u009b2J" },
    { name: "line separator and bidi override", input: "a\u2028b\u202ec\u2066", want: "a\\u2028b\\u202ec\\u2066" },
  ])("$name", ({ input, want }) => {
    expect(visible(input)).toBe(want);
    expect(visible(visible(input))).toBe(want);
  });

  it("oneLine still folds a message's line breaks into spaces and shows the other controls", () => {
    expect(oneLine("first line\n  second\x1b[K line\r")).toBe("first line second\\x1b[K line");
  });

  it("table and labelled show every cell visibly, so widths count what is printed", () => {
    const t = table(["A", "B"], [["x\ny", "z"]]);
    expect(t).toEqual(["A     B", "x\\ny  z"]);
    expect(labelled([["Message", "ok\rforged"]], "  ", 10)).toEqual(["  Message:  ok\\rforged"]);
  });

  it("a watch line shows a hostile holder and message visibly", () => {
    const line = watchText(
      create(WatchLeaderResponseSchema, {
        revision: 3n,
        at: at("2026-03-18T10:00:00Z"),
        kind: LeaderEventKind.LEADER_CHANGED,
        leader: { holderId: "cp\x1b[2J", epoch: 8n, writeReady: true },
        message: HOSTILE,
      }),
    );
    expect(line).not.toMatch(RAW_CONTROL);
    expect(line).not.toContain("\n");
    expect(line).toContain("holder=cp\\x1b[2J");
  });
});

function auditEvent(n: number, extra: Partial<AuditEvent>): AuditEvent {
  return {
    id: `id-${n}`, time: `2026-03-18T10:0${n}:00.000Z`, category: "ha", type: "ha.failover.completed", operator: "alice", reason: "patching",
    request_id: "", caller: "cli (127.0.0.1:5)", node_id: "cp-node-2", epoch: 7 + n, cluster_id: "default", message: "ok", evidence: {}, ...extra,
  };
}

describe("autonomy audit query: hostile operator and reason cannot forge rows or reach the terminal", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "autonomy-escape-"));
    const events = [
      auditEvent(1, {}),
      auditEvent(2, { operator: HOSTILE, reason: HOSTILE, node_id: "cp\x1b[1Anode", message: HOSTILE, caller: HOSTILE }),
      auditEvent(3, { type: "ha.maintenance.paused\r\u0085" }),
    ];
    await writeFile(path.join(dir, AUDIT_FILE), events.map((e) => JSON.stringify(e) + "\n").join(""));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("text: one header and one row per event, every control shown as an escape", async () => {
    const r = await runCli(["audit", "query", "--audit-dir", dir, "--limit", "10"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(RAW_CONTROL);
    const lines = r.stdout.split("\n").filter((l) => l !== "");
    expect(lines).toHaveLength(4);
    expect(lines[2]).toContain("mallory\\r\\n2026-01-01T00:00:00Z");
    expect(lines[2]).toContain("\\x1b[2J\\x07\\x00\\x7f\\u0085\\u009b31m\\u202eevil");
    expect(lines[3]).toContain("ha.maintenance.paused\\r\\u0085");
  });

  it("json: stays JSON and gives back the values exactly", async () => {
    const r = await runCli(["audit", "query", "--audit-dir", dir, "--limit", "10", "--output", "json"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(RAW_CONTROL);
    const parsed = JSON.parse(r.stdout) as { operator: string }[] | { events: { operator: string }[] };
    const events = Array.isArray(parsed) ? parsed : parsed.events;
    expect(events.map((e) => e.operator)).toEqual(["alice", HOSTILE, "alice"]);
  });
});

describe("every text layout shows what the orchestrator sent visibly", () => {
  let stub: OrchestratorStub;
  let url: string;
  beforeAll(async () => {
    stub = await OrchestratorStub.start();
    url = stub.url;
  });
  afterAll(async () => {
    await stub?.close();
  });
  beforeEach(() => stub.reset());

  const mutation = ["--operator", "alice", "--reason", "test"];
  const cases: { name: string; args: string[]; script: () => void }[] = [
    {
      name: "ha status",
      args: ["ha", "status"],
      script: () => {
        const s = statusWithNodes();
        s.nodes[0]!.nodeId = HOSTILE;
        s.leader!.holderId = HOSTILE;
        s.role = HOSTILE;
        stub.script.getStatus = () => s;
      },
    },
    {
      name: "ha history",
      args: ["ha", "history"],
      script: () =>
        (stub.script.getHistory = () => ({ epochs: [{ epoch: 8n, holderId: HOSTILE, acquiredAt: at("2026-03-18T10:00:00Z"), endReason: HOSTILE, operator: HOSTILE, reason: HOSTILE }] })),
    },
    { name: "ha failover trigger", args: ["ha", "failover", "trigger", ...mutation], script: () => (stub.script.triggerFailover = () => ({ ...seedFailover(), newHolder: HOSTILE, message: HOSTILE })) },
    {
      name: "ha split-brain detect",
      args: ["ha", "split-brain", "detect"],
      script: () => {
        const d = seedDetect();
        d.explanation = HOSTILE;
        d.criteria.push(create(SplitBrainCriterionSchema, { name: "new\x1b_criterion", detected: true, detail: HOSTILE }));
        stub.script.detectSplitBrain = () => d;
      },
    },
    {
      name: "ha split-brain recover",
      args: ["ha", "split-brain", "recover", "--strategy", "promote-leader", ...mutation],
      script: () => (stub.script.recoverSplitBrain = () => ({ ...seedRecover(), leaderId: HOSTILE, resignedNodes: [HOSTILE], message: HOSTILE })),
    },
    { name: "ha pause", args: ["ha", "pause", ...mutation], script: () => (stub.script.setMaintenance = () => ({ paused: true, message: HOSTILE })) },
    { name: "a refusal's message on stderr", args: ["ha", "failover", "trigger", ...mutation], script: () => (stub.script.triggerFailover = () => Promise.reject(failedPrecondition(HOSTILE))) },
  ];

  it.each(cases)("$name", async ({ args, script }) => {
    script();
    const r = await runCli([...args, "--orchestrator-url", url]);
    expect(r.stdout + r.stderr).toMatch(/mallory/);
    expect(r.stdout).not.toMatch(RAW_CONTROL);
    expect(r.stderr).not.toMatch(RAW_CONTROL);
    expect(r.stdout + r.stderr).toContain("\\x1b[2J");
  });
});

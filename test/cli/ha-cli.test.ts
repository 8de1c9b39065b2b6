import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { once } from "node:events";
import { failedPrecondition, invalidArgument } from "../../core/errors.js";
import { RecoveryStrategy } from "../../gen/autonomy/ha/v1/admin_pb.js";
import { LeaderEventKind } from "../../gen/autonomy/ha/v1/leader_pb.js";
import { freePort } from "../../pgcluster/index.js";
import { waitFor } from "../../core/clock.js";
import { SEED_STATUS_TEXT, at, seedDetect, seedFailover, seedRecover, statusWithNodes } from "./fixtures.js";
import { OrchestratorStub, runCli, startCli } from "./orchestrator-stub.js";

/* The operator commands of runbooks 000 and 002, run as real child processes against a scripted orchestrator. */

const ISO = "\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}Z";

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

describe("autonomy ha status", () => {
  it("prints runbook 000's block, then the nodes, and says who is calling", async () => {
    stub.script.getStatus = () => statusWithNodes();
    const r = await runCli(["ha", "status", "--orchestrator-url", url]);
    expect(r).toMatchObject({ code: 0, stderr: "" });
    expect(r.stdout.startsWith(SEED_STATUS_TEXT)).toBe(true);
    expect(r.stdout).toContain("\nNodes\n  NODE       ROLE ");
    expect(stub.callsOf("getStatus")[0]?.caller).toMatch(/^autonomy-cli \S+@\S+$/);
  });

  it("finds the orchestrator through AUTONOMY_ORCHESTRATOR_URL, and the flag beats it", async () => {
    stub.script.getStatus = () => statusWithNodes();
    expect((await runCli(["ha", "status"], { AUTONOMY_ORCHESTRATOR_URL: url })).code).toBe(0);
    const closed = `http://127.0.0.1:${await freePort()}`;
    expect((await runCli(["ha", "status", "--orchestrator-url", url], { AUTONOMY_ORCHESTRATOR_URL: closed })).code).toBe(0);
    expect(stub.callsOf("getStatus")).toHaveLength(2);
  });

  it("asks from one node's point of view with --node, and answers the runbook's JSON names", async () => {
    stub.script.getStatus = () => statusWithNodes();
    const r = await runCli(["ha", "status", "--node", "cp-node-2", "--output", "json"], { AUTONOMY_ORCHESTRATOR_URL: url });
    expect(r.code).toBe(0);
    expect(stub.callsOf("getStatus")[0]?.request.nodeId).toBe("cp-node-2");
    const json = JSON.parse(r.stdout);
    expect(json).toMatchObject({
      role: "leader",
      session_lock_held: true,
      write_ready: true,
      queried_at: "2026-03-18T10:00:00Z",
      leader: { holder_id: "cp-node-1", epoch: 7, acquired_at: "2026-03-18T08:30:00Z" },
      quorum: { write_ready: true, sync_replicas: 1 },
      replication: { lag_status: "ok", max_write_lag: "12ms", max_replay_lag: "18ms", replicas: 1 },
    });
    expect(json.nodes).toHaveLength(3);
  });

  it("says in one line that the orchestrator cannot be reached, exit 1", async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const r = await runCli(["ha", "status", "--orchestrator-url", closed]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(
      new RegExp(`^autonomy ha status: cannot reach the orchestrator at ${closed}: .*ECONNREFUSED.*; check --orchestrator-url / AUTONOMY_ORCHESTRATOR_URL\\n$`),
    );
  });

  it("turns a server failure into one line without a stack trace, exit 1", async () => {
    stub.script.getStatus = () => {
      throw new Error("lock database unreachable:\n  connection refused");
    };
    const r = await runCli(["ha", "status", "--orchestrator-url", url]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("autonomy ha status: lock database unreachable: connection refused\n");
  });

  it("refuses a malformed URL as a usage error", async () => {
    const r = await runCli(["ha", "status", "--orchestrator-url", "ftp://x"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--orchestrator-url");
  });
});

describe("autonomy ha failover trigger", () => {
  const reason = "planned maintenance: OS patching on cp-node-1";

  it("fails over with the operator from AUTONOMY_OPERATOR and prints runbook 000's result", async () => {
    stub.script.triggerFailover = () => seedFailover();
    const r = await runCli(["ha", "failover", "trigger", "--orchestrator-url", url, "--reason", reason], { AUTONOMY_OPERATOR: "alice" });
    expect(r).toMatchObject({ code: 0, stderr: "" });
    expect(r.stdout).toBe(`Failover triggered
  Previous Holder: cp-node-1
  Previous Epoch:  7
  Resigned At:     2026-03-18T10:05:00Z
  Message:         leader resigned gracefully; successor will campaign for epoch 8
`);
    expect(stub.callsOf("triggerFailover")[0]?.request).toMatchObject({ operator: "alice", reason, force: false, targetNode: "" });
  });

  it("answers runbook 000's JSON, sends --force and --target, and --operator beats the env var", async () => {
    stub.script.triggerFailover = () => ({ ...seedFailover(), newHolder: "cp-node-3", newEpoch: 8n });
    const r = await runCli(
      ["ha", "failover", "trigger", "--orchestrator-url", url, "--operator", "bob", "--reason", reason, "--force", "--target", "cp-node-3", "--output", "json"],
      { AUTONOMY_OPERATOR: "alice" },
    );
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      success: true,
      previous_holder: "cp-node-1",
      previous_epoch: 7,
      resigned_at: "2026-03-18T10:05:00Z",
      message: "leader resigned gracefully; successor will campaign for epoch 8",
      new_holder: "cp-node-3",
      new_epoch: 8,
    });
    expect(stub.callsOf("triggerFailover")[0]?.request).toMatchObject({ operator: "bob", force: true, targetNode: "cp-node-3" });
  });

  it.each([
    { name: "not the leader", message: "not the leader; leader is cp-node-2" },
    { name: "replication lag critical", message: "replication lag critical: max replay lag 12.4s > 10s; fix replication or retry with --force" },
  ])("refuses with exit 3 and the server's message when $name", async ({ message }) => {
    stub.script.triggerFailover = () => {
      throw failedPrecondition(message);
    };
    const r = await runCli(["ha", "failover", "trigger", "--orchestrator-url", url, "--operator", "alice", "--reason", reason]);
    expect(r).toEqual({ code: 3, stdout: "", stderr: `autonomy ha failover trigger: refused: ${message}\n` });
  });

  it.each([
    { name: "operator", args: ["--reason", "why"], missing: /--operator is required \(or set AUTONOMY_OPERATOR\)/ },
    { name: "reason", args: ["--operator", "alice"], missing: /--reason is required/ },
    { name: "both", args: [], missing: /--operator \(or AUTONOMY_OPERATOR\) and --reason are required/ },
    { name: "a blank reason", args: ["--operator", "alice", "--reason", "  "], missing: /--reason is required/ },
  ])("refuses without $name: exit 2, one line, nothing sent", async ({ args, missing }) => {
    stub.script.triggerFailover = () => seedFailover();
    const r = await runCli(["ha", "failover", "trigger", "--orchestrator-url", url, ...args]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(missing);
    expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(stub.calls).toHaveLength(0);
  });

  it("reports a failover the server could not complete with exit 1", async () => {
    stub.script.triggerFailover = () => ({ ...seedFailover(), success: false, message: "successor cp-node-2 did not confirm epoch 8" });
    const r = await runCli(["ha", "failover", "trigger", "--orchestrator-url", url, "--operator", "a", "--reason", "b"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("Failover triggered");
    expect(r.stderr).toBe("autonomy ha failover trigger: failover did not complete: successor cp-node-2 did not confirm epoch 8\n");
  });

  it("treats a bad argument the server rejects as a usage error", async () => {
    stub.script.triggerFailover = () => {
      throw invalidArgument('unknown node "cp-node-9"; known: cp-node-1, cp-node-2');
    };
    const r = await runCli(["ha", "failover", "trigger", "--orchestrator-url", url, "--operator", "a", "--reason", "b", "--target", "cp-node-9"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('autonomy ha failover trigger: invalid request: unknown node "cp-node-9"; known: cp-node-1, cp-node-2\n');
  });
});

describe("autonomy ha split-brain", () => {
  it("detects and prints runbook 002's block and JSON", async () => {
    stub.script.detectSplitBrain = () => seedDetect();
    const text = await runCli(["ha", "split-brain", "detect", "--orchestrator-url", url]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain("Split-Brain Status\n  Split-Brain Detected: true\n  Detected At:          2026-03-18T11:00:00Z\n");
    expect(text.stdout).toContain("  Unclosed Epochs:      true (2 epochs have resigned_at = NULL)\n");
    const json = await runCli(["ha", "split-brain", "detect", "--orchestrator-url", url, "--output", "json"]);
    expect(JSON.parse(json.stdout)).toMatchObject({
      split_brain_detected: true,
      detected_at: "2026-03-18T11:00:00Z",
      epoch_divergence: true,
      holder_mismatch: true,
      unclosed_epochs: 2,
    });
  });

  it.each([
    { strategy: "promote-leader", wire: RecoveryStrategy.PROMOTE_LEADER, extra: ["--force", "--target", "node-2"] },
    { strategy: "manual-reconcile", wire: RecoveryStrategy.MANUAL_RECONCILE, extra: [] },
  ])("recovers with $strategy", async ({ strategy, wire, extra }) => {
    stub.script.recoverSplitBrain = () => ({ ...seedRecover(), strategy });
    const r = await runCli(
      ["ha", "split-brain", "recover", "--orchestrator-url", url, "--operator", "alice", "--strategy", strategy, "--reason", "node-1 stale", ...extra],
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`Split-Brain Recovery
  Strategy:     ${strategy}
  Recovered At: 2026-03-18T11:10:00Z
  Message:      stale leader resigned; node-2 confirmed as leader for epoch 9
`);
    expect(stub.callsOf("recoverSplitBrain")[0]?.request).toMatchObject({
      strategy: wire,
      operator: "alice",
      reason: "node-1 stale",
      force: extra.includes("--force"),
      targetNode: extra.includes("--target") ? "node-2" : "",
    });
  });

  it("answers the recovery in JSON", async () => {
    stub.script.recoverSplitBrain = () => seedRecover();
    const r = await runCli(
      ["ha", "split-brain", "recover", "--strategy", "promote-leader", "--reason", "x", "-o", "json"],
      { AUTONOMY_OPERATOR: "alice", AUTONOMY_ORCHESTRATOR_URL: url },
    );
    expect(JSON.parse(r.stdout)).toMatchObject({
      success: true,
      strategy: "promote-leader",
      recovered_at: "2026-03-18T11:10:00Z",
      message: "stale leader resigned; node-2 confirmed as leader for epoch 9",
    });
  });

  it.each([
    { name: "an unknown strategy", args: ["--strategy", "yolo", "--operator", "a", "--reason", "b"], line: 'unknown --strategy "yolo"; valid strategies: promote-leader, manual-reconcile' },
    { name: "no strategy", args: ["--operator", "a", "--reason", "b"], line: "--strategy is required: one of promote-leader, manual-reconcile" },
    { name: "no operator", args: ["--strategy", "manual-reconcile", "--reason", "b"], line: "--operator is required (or set AUTONOMY_OPERATOR): the audit log records who asked" },
  ])("refuses $name: exit 2, nothing sent", async ({ args, line }) => {
    const r = await runCli(["ha", "split-brain", "recover", "--orchestrator-url", url, ...args]);
    expect(r).toEqual({ code: 2, stdout: "", stderr: `autonomy ha split-brain recover: ${line}\n` });
    expect(stub.calls).toHaveLength(0);
  });

  it("refuses with exit 3 when the server finds no split-brain to recover", async () => {
    stub.script.recoverSplitBrain = () => {
      throw failedPrecondition("no split-brain detected; nothing to recover");
    };
    const r = await runCli(["ha", "split-brain", "recover", "--orchestrator-url", url, "--strategy", "promote-leader", "--operator", "a", "--reason", "b"]);
    expect(r.code).toBe(3);
    expect(r.stderr).toBe("autonomy ha split-brain recover: refused: no split-brain detected; nothing to recover\n");
  });
});

describe("autonomy ha pause, resume and history", () => {
  it.each([
    { command: "pause", paused: true, first: "Maintenance mode on: automatic actions paused" },
    { command: "resume", paused: false, first: "Maintenance mode off: automatic actions resumed" },
  ])("$command sets maintenance with who and why", async ({ command, paused, first }) => {
    stub.script.setMaintenance = (req: { paused: boolean }) => ({ paused: req.paused, message: "ok", changedAt: at("2026-03-18T12:00:00Z") });
    const r = await runCli(["ha", command, "--orchestrator-url", url, "--reason", "kernel upgrade"], { AUTONOMY_OPERATOR: "alice" });
    expect(r.code).toBe(0);
    expect(r.stdout.split("\n")[0]).toBe(first);
    expect(stub.callsOf("setMaintenance")[0]?.request).toMatchObject({ paused, operator: "alice", reason: "kernel upgrade" });
  });

  it("refuses pause without a reason, nothing sent", async () => {
    const r = await runCli(["ha", "pause", "--orchestrator-url", url, "--operator", "alice"]);
    expect(r.code).toBe(2);
    expect(stub.calls).toHaveLength(0);
  });

  it("lists epochs with --limit, as a table and as JSON", async () => {
    stub.script.getHistory = () => ({
      epochs: [
        { epoch: 8n, holderId: "cp-node-2", acquiredAt: at("2026-03-18T10:05:01Z"), operator: "alice", reason: "patching" },
        { epoch: 7n, holderId: "cp-node-1", acquiredAt: at("2026-03-18T08:30:00Z"), resignedAt: at("2026-03-18T10:05:00Z"), endReason: "resigned", operator: "alice", reason: "patching" },
      ],
    });
    const r = await runCli(["ha", "history", "--orchestrator-url", url, "--limit", "5"]);
    expect(r.code).toBe(0);
    expect(r.stdout.split("\n")[0]).toBe("EPOCH  HOLDER     ACQUIRED              RESIGNED              END REASON");
    expect(stub.callsOf("getHistory")[0]?.request.limit).toBe(5);
    const json = await runCli(["ha", "history", "--orchestrator-url", url, "--output", "json"]);
    expect(JSON.parse(json.stdout).map((e: { epoch: number }) => e.epoch)).toEqual([8, 7]);
    expect((await runCli(["ha", "history", "--orchestrator-url", url, "--limit", "lots"])).code).toBe(2);
  });
});

describe("autonomy ha watch", () => {
  const events = [
    { revision: 1n, kind: LeaderEventKind.SNAPSHOT, leader: { holderId: "cp-node-1", epoch: 7n, writeReady: true }, at: at("2026-03-18T10:00:00Z"), message: "cp-node-1 leads epoch 7" },
    { revision: 2n, kind: LeaderEventKind.LEADER_CHANGED, leader: { holderId: "cp-node-2", epoch: 8n, writeReady: true }, at: at("2026-03-18T10:05:01Z"), message: "cp-node-2 leads epoch 8" },
  ];

  async function linesThenInterrupt(args: string[], want: number): Promise<{ lines: string[]; code: number | null; stderr: string }> {
    const child = startCli(["ha", "watch", "--orchestrator-url", url, ...args]);
    let out = "";
    let stderr = "";
    child.stderr!.on("data", (b: Buffer) => (stderr += b.toString()));
    await new Promise<void>((resolve) => {
      child.stdout!.on("data", (b: Buffer) => {
        out += b.toString();
        if (out.split("\n").length > want) resolve();
      });
      child.once("exit", () => resolve());
    });
    child.kill("SIGINT");
    const [code] = (await once(child, "exit")) as [number | null];
    return { lines: out.trimEnd().split("\n"), code, stderr };
  }

  it("prints each event as a line and stops cleanly on Ctrl-C", async () => {
    stub.script.watch = { events };
    const r = await linesThenInterrupt([], 2);
    expect(r.lines).toEqual([
      "#1     2026-03-18T10:00:00Z snapshot             holder=cp-node-1     epoch=7    write-ready=true  cp-node-1 leads epoch 7",
      "#2     2026-03-18T10:05:01Z leader_changed       holder=cp-node-2     epoch=8    write-ready=true  cp-node-2 leads epoch 8",
    ]);
    expect(r).toMatchObject({ code: 0, stderr: "" });
  });

  it("prints one JSON object per line with --output json", async () => {
    stub.script.watch = { events };
    const r = await linesThenInterrupt(["--output", "json"], 2);
    expect(r.code).toBe(0);
    expect(r.lines.map((l) => JSON.parse(l))).toEqual([
      { revision: 1, at: "2026-03-18T10:00:00Z", kind: "snapshot", holder_id: "cp-node-1", epoch: 7, write_ready: true, acquired_at: null, message: "cp-node-1 leads epoch 7" },
      { revision: 2, at: "2026-03-18T10:05:01Z", kind: "leader_changed", holder_id: "cp-node-2", epoch: 8, write_ready: true, acquired_at: null, message: "cp-node-2 leads epoch 8" },
    ]);
  });

  it("says on stderr that it lost the stream when the server ends it, reconnects, and prints the fresh snapshot", async () => {
    stub.script.watch = { events: [events[0]!], end: true };
    const child = startCli(["ha", "watch", "--orchestrator-url", url]);
    let out = "";
    let stderr = "";
    child.stdout!.on("data", (b: Buffer) => (out += b.toString()));
    child.stderr!.on("data", (b: Buffer) => (stderr += b.toString()));
    await waitFor(() => stderr.includes("resumed the leader stream") && out.split("\n").length > 2, { timeoutMs: 15_000, what: "a resumed stream" });
    child.kill("SIGINT");
    const [code] = (await once(child, "exit")) as [number | null];
    expect(code).toBe(0);
    const [lost, resumed] = stderr.split("\n");
    expect(lost).toMatch(new RegExp(`^autonomy ha watch: lost the leader stream from ${url} at ${ISO} \\(the server closed the stream\\); reconnecting$`));
    expect(resumed).toMatch(new RegExp(`^autonomy ha watch: resumed the leader stream at ${ISO} after 1 attempt\\(s\\), [\\d.]+s without it; changes in between may have been missed`));
    expect(out.split("\n").slice(0, 2).every((l) => l.includes(" snapshot "))).toBe(true);
    expect(stub.callsOf("watchLeader").length).toBeGreaterThanOrEqual(2);
  });

  it("fails at once, exit 1, when the orchestrator cannot be reached at the start", async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const r = await runCli(["ha", "watch", "--orchestrator-url", closed]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^autonomy ha watch: cannot reach the orchestrator at .*ECONNREFUSED/);
  });
});

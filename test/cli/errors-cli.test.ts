import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { failedPrecondition } from "../../core/errors.js";
import { freePort } from "../../pgcluster/index.js";
import { seedDetect } from "./fixtures.js";
import { OrchestratorStub, runCli } from "./orchestrator-stub.js";

/* How commands end badly: one JSON object on stderr with --output json, typo hints, detect's opt-in exit status. */

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

const errorOf = (stderr: string) => {
  expect(stderr.endsWith("\n")).toBe(true);
  expect(stderr.trimEnd().split("\n")).toHaveLength(1);
  return JSON.parse(stderr);
};

describe("errors with --output json", () => {
  it("a refusal is one JSON object with the server's message, exit 3, nothing on stdout", async () => {
    stub.script.triggerFailover = () => {
      throw failedPrecondition("precondition not met: not the leader; leader is cp-node-1");
    };
    const r = await runCli(["ha", "failover", "trigger", "--orchestrator-url", url, "--operator", "a", "--reason", "b", "--output", "json"]);
    expect(r.code).toBe(3);
    expect(r.stdout).toBe("");
    expect(errorOf(r.stderr)).toEqual({
      error: { code: "refused", exit_code: 3, message: "precondition not met: not the leader; leader is cp-node-1", command: "ha failover trigger" },
    });
  });

  it.each([
    { name: "an unknown flag", args: ["ha", "status", "-o", "json", "--verbose"], code: "usage", exit: 2, command: "ha status", message: /^Unknown option '--verbose'$/ },
    { name: "a missing --reason", args: ["ha", "pause", "--output=json", "--operator", "a"], code: "usage", exit: 2, command: "ha pause", message: /^--reason is required/ },
    { name: "an unknown subcommand", args: ["ha", "stauts", "-o", "json"], code: "usage", exit: 2, command: "ha", message: /^unknown command "stauts" \(did you mean "status"\?\)/ },
    { name: "an unknown command", args: ["hq", "status", "-o", "json"], code: "usage", exit: 2, command: "", message: /^unknown command "hq" \(did you mean "ha"\?\)/ },
  ])("$name is a usage error object, exit 2", async ({ args, code, exit, command, message }) => {
    const r = await runCli(args);
    expect(r.code).toBe(exit);
    const { error } = errorOf(r.stderr);
    expect(error).toMatchObject({ code, exit_code: exit, command });
    expect(error.message).toMatch(message);
  });

  it("an unreachable URL is an object with code unreachable, exit 1", async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const r = await runCli(["ha", "status", "--orchestrator-url", closed, "-o", "json"]);
    expect(r.code).toBe(1);
    const { error } = errorOf(r.stderr);
    expect(error).toMatchObject({ code: "unreachable", exit_code: 1, command: "ha status" });
    expect(error.message).toContain(`cannot reach the orchestrator at ${closed}`);
  });

  it("text mode keeps its one line (and the usage hint) exactly", async () => {
    stub.script.triggerFailover = () => {
      throw failedPrecondition("not the leader; leader is cp-node-2");
    };
    const r = await runCli(["ha", "failover", "trigger", "--orchestrator-url", url, "--operator", "a", "--reason", "b"]);
    expect(r).toEqual({ code: 3, stdout: "", stderr: "autonomy ha failover trigger: refused: not the leader; leader is cp-node-2\n" });
  });
});

describe("did you mean", () => {
  it.each([
    { args: ["ha", "stauts"], line: 'autonomy ha: unknown command "stauts" (did you mean "status"?); run "autonomy ha --help" for the list' },
    { args: ["ha", "split-brain", "detcet"], line: 'autonomy ha split-brain: unknown command "detcet" (did you mean "detect"?); run "autonomy ha split-brain --help" for the list' },
    { args: ["adit", "query"], line: 'autonomy: unknown command "adit" (did you mean "audit"?); run "autonomy --help" for the list' },
  ])("names the closest command for $args", async ({ args, line }) => {
    expect(await runCli(args)).toEqual({ code: 2, stdout: "", stderr: `${line}\n` });
  });

  it("names the closest flag in the one-line error", async () => {
    const r = await runCli(["ha", "status", "--orchestrator-ulr", url]);
    expect(r.code).toBe(2);
    expect(r.stderr.split("\n")[0]).toBe("autonomy ha status: Unknown option '--orchestrator-ulr' (did you mean --orchestrator-url?)");
  });

  it("gives no hint when nothing is close", async () => {
    expect((await runCli(["ha", "xyzzy"])).stderr).toBe('autonomy ha: unknown command "xyzzy"; run "autonomy ha --help" for the list\n');
  });
});

describe("autonomy ha split-brain detect --exit-status", () => {
  it("exits 4 when a split-brain is detected, 0 when not, and 0 either way without the flag", async () => {
    stub.script.detectSplitBrain = () => seedDetect();
    expect((await runCli(["ha", "split-brain", "detect", "--orchestrator-url", url, "--exit-status"])).code).toBe(4);
    expect((await runCli(["ha", "split-brain", "detect", "--orchestrator-url", url])).code).toBe(0);
    stub.script.detectSplitBrain = () => ({ ...seedDetect(), splitBrainDetected: false });
    const healthy = await runCli(["ha", "split-brain", "detect", "--orchestrator-url", url, "--exit-status", "-o", "json"]);
    expect(healthy.code).toBe(0);
    expect(JSON.parse(healthy.stdout).split_brain_detected).toBe(false);
  });
});

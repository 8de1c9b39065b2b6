import { describe, expect, it } from "vitest";
import { runCli } from "./orchestrator-stub.js";

/* Every group and command explains itself; anything unknown is a usage error (exit 2). */

const commands = [
  ["ha"],
  ["ha", "status"],
  ["ha", "failover"],
  ["ha", "failover", "trigger"],
  ["ha", "split-brain"],
  ["ha", "split-brain", "detect"],
  ["ha", "split-brain", "recover"],
  ["ha", "pause"],
  ["ha", "resume"],
  ["ha", "history"],
  ["ha", "watch"],
  ["audit"],
  ["audit", "query"],
];

describe("autonomy --help", () => {
  it("lists ha and audit", async () => {
    const r = await runCli(["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\n {2}ha {2,}/);
    expect(r.stdout).toMatch(/\n {2}audit {2,}/);
  });

  it("explains every group and command with --help and -h, exit 0", async () => {
    // A few at a time: each is a whole Node process, and this machine has two cores.
    const runs = commands.flatMap((c) => [[...c, "--help"], [...c, "-h"]]);
    const results = [];
    for (let i = 0; i < runs.length; i += 4) results.push(...(await Promise.all(runs.slice(i, i + 4).map((args) => runCli(args)))));
    results.forEach((r, i) => {
      const path = commands[Math.floor(i / 2)]!.join(" ");
      expect(r.code, path).toBe(0);
      expect(r.stdout, path).toContain(`Usage: autonomy ${path}`);
      expect(r.stderr, path).toBe("");
    });
  });

  it("documents the runbook flags and env vars where they apply", async () => {
    const trigger = await runCli(["ha", "failover", "trigger", "--help"]);
    for (const s of ["--operator", "AUTONOMY_OPERATOR", "--reason", "--force", "--target", "--orchestrator-url", "AUTONOMY_ORCHESTRATOR_URL", "--output"]) {
      expect(trigger.stdout).toContain(s);
    }
    const recover = await runCli(["ha", "split-brain", "recover", "--help"]);
    expect(recover.stdout).toContain("promote-leader|manual-reconcile");
    const audit = await runCli(["audit", "query", "--help"]);
    for (const s of ["--audit-dir", "AUTONOMY_AUDIT_DIR", "--category", "--limit"]) expect(audit.stdout).toContain(s);
  });

  it.each([
    { args: ["ha", "promote"], stderr: 'autonomy ha: unknown command "promote"; run "autonomy ha --help" for the list\n' },
    { args: ["ha", "split-brain", "fix"], stderr: 'autonomy ha split-brain: unknown command "fix"; run "autonomy ha split-brain --help" for the list\n' },
    { args: ["ha"], stderr: "autonomy ha: missing command; one of status, failover, split-brain, pause, resume, history, watch, clusters\n" },
    { args: ["audit", "list"], stderr: 'autonomy audit: unknown command "list"; run "autonomy audit --help" for the list\n' },
  ])("refuses $args with exit 2", async ({ args, stderr }) => {
    expect(await runCli(args)).toEqual({ code: 2, stdout: "", stderr });
  });

  it.each([
    [["ha", "status", "--output", "yaml"], /--output must be text or json, got "yaml"/],
    [["ha", "status", "--verbose"], /Unknown option '--verbose'/],
    [["ha", "status", "extra"], /Unexpected argument 'extra'/],
  ])("refuses bad flags %j with exit 2 and a hint", async (args, message) => {
    const r = await runCli(args as string[]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message as RegExp);
    expect(r.stderr).toContain(`Run "autonomy ha status --help" for usage.`);
  });
});

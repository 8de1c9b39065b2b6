import { describe, expect, it } from "vitest";
import { failureJson, failureLine, wantsJson } from "./failure.js";

describe("failure", () => {
  const refused = { command: "ha failover trigger", code: "refused", message: "not the leader; leader is cp-node-2", exitCode: 3 } as const;

  it("reads as today's line in text and as one error object in JSON", () => {
    expect(failureLine(refused)).toBe("autonomy ha failover trigger: refused: not the leader; leader is cp-node-2");
    expect(failureLine({ command: "", code: "usage", message: "unknown command", exitCode: 2 })).toBe("autonomy: unknown command");
    expect(failureJson(refused)).toEqual({ error: { code: "refused", exit_code: 3, message: "not the leader; leader is cp-node-2", command: "ha failover trigger" } });
  });

  it("prints the runbooks' 409 text as it is, without a second 'refused:'", () => {
    const runbook = { ...refused, message: "precondition not met: not the leader; leader is cp-node-2" };
    expect(failureLine(runbook)).toBe("autonomy ha failover trigger: precondition not met: not the leader; leader is cp-node-2");
  });

  it.each([
    [["ha", "status", "--output", "json"], true],
    [["ha", "status", "-o", "json"], true],
    [["ha", "status", "--output=json"], true],
    [["ha", "status", "-ojson"], true],
    [["ha", "status", "-o", "text"], false],
    [["ha", "status", "--", "-o", "json"], false],
    [["ha", "status"], false],
  ])("%j asks for JSON: %s", (argv, json) => {
    expect(wantsJson(argv)).toBe(json);
  });
});

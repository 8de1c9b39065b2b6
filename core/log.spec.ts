import { describe, expect, it } from "vitest";
import { PassThrough } from "node:stream";
import { createLogger } from "./log.js";

function capture(pretty: boolean) {
  const out = new PassThrough();
  let text = "";
  out.on("data", (b: Buffer) => (text += b.toString()));
  return { log: createLogger({ name: "coordinator", level: "info", pretty, destination: out }), text: () => text };
}

describe("createLogger", () => {
  it("writes one JSON object per line when not on a terminal", () => {
    const { log, text } = capture(false);
    log.info({ url: "http://127.0.0.1:8890" }, "coordinator listening on http://127.0.0.1:8890");
    log.warn({ err: "connection refused" }, "lock database unreachable");
    const lines = text().trimEnd().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toMatchObject([
      { level: 30, name: "coordinator", url: "http://127.0.0.1:8890", msg: "coordinator listening on http://127.0.0.1:8890" },
      { level: 40, name: "coordinator", err: "connection refused", msg: "lock database unreachable" },
    ]);
  });

  it("writes readable lines for people: fields on the record's line, an error on its own", () => {
    const { log, text } = capture(true);
    log.info({ epoch: 8, holder: "cp-node-1" }, "leader changed");
    log.warn({ err: "connection refused" }, "lock database unreachable");
    expect(text().trimEnd().split("\n")).toEqual([
      expect.stringMatching(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO \(coordinator\): leader changed \{"epoch":8,"holder":"cp-node-1"\}$/),
      expect.stringMatching(/^\[\d\d:\d\d:\d\d\.\d{3}\] WARN \(coordinator\): lock database unreachable\s*$/),
      '    err: "connection refused"',
    ]);
  });
});

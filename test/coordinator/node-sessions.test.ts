import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../core/clock.js";
import { HaError } from "../../core/errors.js";
import { silentLogger } from "../../core/log.js";
import { ConnectRequestSchema, type ConnectRequest } from "../../gen/autonomy/ha/v1/agent_pb.js";
import { NodeSessions } from "../../coordinator/live/node-sessions.js";
import { Outbox } from "../../coordinator/live/outbox.js";
import { anonymousPrincipal } from "../../rpc/auth/principal.js";
import { reportToWire } from "../../rpc/wire.js";
import { report } from "../../coordinator/view/builders.js";

function setup() {
  const events: string[] = [];
  const clock = new ManualClock();
  const sessions = new NodeSessions("default", clock, silentLogger(), {
    events: {
      report: (id, material) => events.push(`report ${id} ${material}`),
      connection: (id, up) => events.push(`${up ? "up" : "down"} ${id}`),
    },
  });
  const open = (nodeId: string | undefined) => {
    const requests = new Outbox<ConnectRequest>();
    const ac = new AbortController();
    const metadata = new Map(nodeId ? [["x-autonomy-node-id", nodeId]] : []);
    const responses = sessions.connect(requests, { metadata, peer: "test", signal: ac.signal, principal: anonymousPrincipal })[Symbol.asyncIterator]();
    return { requests, responses, ac };
  };
  const reportMsg = (nodeId: string, o: Parameters<typeof report>[1] = {}) =>
    create(ConnectRequestSchema, { message: { case: "report", value: reportToWire(report(nodeId, o)) } });
  return { sessions, events, open, reportMsg, clock };
}

const settle = () => new Promise((r) => setTimeout(r, 0));

describe("agent sessions: identity from metadata, hostile reports refused, one stream per node", () => {
  it("a stream without x-autonomy-node-id is refused with INVALID_ARGUMENT", async () => {
    const { open } = setup();
    const err = await open(undefined).responses.next().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HaError);
    expect((err as HaError).code).toBe("invalid_argument");
    expect((err as HaError).message).toMatch(/x-autonomy-node-id/);
    const bad = await open("not a node id!").responses.next().catch((e: unknown) => e);
    expect((bad as HaError).code).toBe("invalid_argument");
  });

  it("an absurd report ends the stream with INVALID_ARGUMENT and is not applied", async () => {
    const { sessions, open, reportMsg } = setup();
    const s = open("cp-node-1");
    const first = s.responses.next();
    s.requests.push(reportMsg("cp-node-1", { epoch: 3 }));
    await settle();
    expect(sessions.node("cp-node-1")?.report.epoch).toBe(3);
    s.requests.push(reportMsg("cp-node-1", { sequence: 2, epoch: 2 ** 60 }));
    const err = await first.catch((e: unknown) => e);
    expect((err as HaError).code).toBe("invalid_argument");
    expect((err as HaError).message).toMatch(/report from cp-node-1 rejected: epoch \d+ is out of range/);
    expect(sessions.node("cp-node-1")).toMatchObject({ connected: false, report: { epoch: 3 } });
  });

  it("a report of another cluster is refused with FAILED_PRECONDITION", async () => {
    const { sessions, open, reportMsg } = setup();
    const s = open("cp-node-2");
    const first = s.responses.next();
    s.requests.push(reportMsg("cp-node-2", { clusterId: "other" }));
    expect(((await first.catch((e: unknown) => e)) as HaError).code).toBe("failed_precondition");
    expect(sessions.node("cp-node-2")).toBeUndefined();
  });

  it("reordered reports are dropped, acks for unknown commands ignored, a newer stream replaces a silent one", async () => {
    const { sessions, events, open, reportMsg, clock } = setup();
    const a = open("cp-node-3");
    const pendingA = a.responses.next();
    a.requests.push(reportMsg("cp-node-3", { sequence: 5, priority: 1 }));
    a.requests.push(reportMsg("cp-node-3", { sequence: 4, priority: 2 }));
    a.requests.push(create(ConnectRequestSchema, { message: { case: "ack", value: { commandId: "nope", result: 1 } } }));
    await settle();
    expect(sessions.node("cp-node-3")?.report.priority).toBe(1);
    clock.advance(3_001); // past report-stale-after: the old stream counts as gone
    const b = open("cp-node-3");
    const pendingB = b.responses.next(); // a generator runs on its first pull
    const ended = await pendingA.catch((e: unknown) => e);
    expect((ended as HaError).code).toBe("aborted");
    b.requests.push(reportMsg("cp-node-3", { sequence: 1, priority: 7 }));
    await settle();
    expect(sessions.node("cp-node-3")).toMatchObject({ connected: true, report: { priority: 7 } });
    expect(events.filter((e) => e.startsWith("up") || e.startsWith("down"))).toEqual(["up cp-node-3", "down cp-node-3", "up cp-node-3"]);
    // A command to the node resolves with its ack.
    const sent = sessions.send("cp-node-3", { kind: "hold" }, "test", { timeoutMs: 1000 });
    const cmd = await pendingB;
    const id = (cmd.value as { message: { value: { commandId: string } } }).message.value.commandId;
    b.requests.push(create(ConnectRequestSchema, { message: { case: "ack", value: { commandId: id, result: 1, message: "holding" } } }));
    expect(await sent).toMatchObject({ result: "done", message: "holding" });
  });
});

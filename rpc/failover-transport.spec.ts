import { Code, ConnectError, type Transport } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { HaAdminService } from "../gen/autonomy/ha/v1/admin_pb.js";
import { ACTIVE_COORDINATOR_TRAILER, COORDINATOR_ROLE_TRAILER, failoverTransport, goesElsewhere } from "./failover-transport.js";
import { parseServiceUrls } from "./client.js";

const refused = () => new ConnectError("connect ECONNREFUSED 127.0.0.1:1", Code.Unavailable, undefined, undefined, Object.assign(new Error("refused"), { code: "ECONNREFUSED" }));
const standby = (active?: string) =>
  new ConnectError("standby", Code.Unavailable, new Headers({ [COORDINATOR_ROLE_TRAILER]: "standby", ...(active ? { [ACTIVE_COORDINATOR_TRAILER]: active } : {}) }));

/** A transport whose unary calls answer from `script`, recording who was called. */
function fake(name: string, calls: string[], script: () => unknown): Transport {
  return {
    unary: async () => {
      calls.push(name);
      const out = script();
      if (out instanceof Error) throw out;
      return { message: out } as never;
    },
    stream: async () => {
      throw new Error("not used");
    },
  };
}

describe("goesElsewhere", () => {
  it("moves on from a server that cannot be reached or is a standby, never from a server's own answer", () => {
    expect(goesElsewhere(refused())).toEqual({ elsewhere: true });
    expect(goesElsewhere(standby("http://b:1"))).toEqual({ elsewhere: true, activeUrl: "http://b:1" });
    expect(goesElsewhere(new ConnectError("precondition not met: not the leader", Code.FailedPrecondition))).toEqual({ elsewhere: false });
    expect(goesElsewhere(new ConnectError("cp-node-2 is not connected to the coordinator", Code.Unavailable))).toEqual({ elsewhere: false });
    expect(goesElsewhere(new Error("plain"))).toEqual({ elsewhere: false });
  });
});

describe("failoverTransport", () => {
  const method = HaAdminService.method.getStatus;
  const call = (t: Transport) => t.unary(method, undefined, 1_000, undefined, {});

  it("follows a standby's pointer past a server that is down, then keeps calling the one that answered", async () => {
    const calls: string[] = [];
    const urls = ["http://a:1", "http://b:1", "http://c:1"];
    const t = failoverTransport(urls, (url) =>
      fake(url, calls, () => (url === "http://a:1" ? refused() : url === "http://b:1" ? standby("http://c:1") : { answeredBy: url })),
    );
    expect((await call(t)).message).toEqual({ answeredBy: "http://c:1" });
    expect(calls).toEqual(["http://a:1", "http://b:1", "http://c:1"]);
    calls.length = 0;
    await call(t);
    expect(calls).toEqual(["http://c:1"]);
  });

  it("returns a server's own refusal at once, without asking the others", async () => {
    const calls: string[] = [];
    const t = failoverTransport(["http://a:1", "http://b:1"], (url) => fake(url, calls, () => new ConnectError("not the leader", Code.FailedPrecondition)));
    await expect(call(t)).rejects.toMatchObject({ code: Code.FailedPrecondition });
    expect(calls).toEqual(["http://a:1"]);
  });

  it("gives up with the standby's answer when no coordinator takes the call", async () => {
    const t = failoverTransport(["http://a:1", "http://b:1"], (url) => fake(url, [], () => (url === "http://a:1" ? standby() : refused())));
    await expect(call(t)).rejects.toMatchObject({ code: Code.Unavailable, rawMessage: "standby" });
  }, 15_000);
});

describe("parseServiceUrls", () => {
  it("normalises each URL and refuses empty entries and duplicates with a clear message", () => {
    expect(parseServiceUrls("http://a:1/, b:2")).toBe("http://a:1,http://b:2");
    expect(() => parseServiceUrls("http://a:1,,http://b:2", "--coordinator-url")).toThrow(/--coordinator-url "http:\/\/a:1,,http:\/\/b:2" has an empty entry/);
    expect(() => parseServiceUrls("http://a:1,http://a:1/", "--coordinator-url")).toThrow("--coordinator-url lists http://a:1 twice");
    expect(() => parseServiceUrls("http://a:1,ftp://b", "--orchestrator-url")).toThrow(/must start with http:\/\/ or https:\/\//);
  });
});

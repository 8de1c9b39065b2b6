import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { ChaosProxy } from "../../chaos/proxy.js";

/** An echo server and a client through a proxy, with everything the client received. */
async function echoThroughProxy() {
  const server = net.createServer((s) => s.pipe(s));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const proxy = new ChaosProxy("test", "127.0.0.1", (server.address() as net.AddressInfo).port);
  await proxy.listen();
  const client = net.connect({ host: "127.0.0.1", port: proxy.port });
  await new Promise<void>((r) => client.once("connect", () => r()));
  const received: { at: number; text: string }[] = [];
  client.on("data", (d: Buffer) => received.push({ at: Date.now(), text: d.toString() }));
  let closed = false;
  client.on("close", () => (closed = true));
  const cleanup = async () => {
    client.destroy();
    await proxy.close();
    await new Promise<void>((r) => server.close(() => r()));
  };
  return { proxy, client, received, isClosed: () => closed, cleanup };
}

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

describe("the chaos proxy", () => {
  it("passes bytes both ways when healthy", async () => {
    const t = await echoThroughProxy();
    cleanups.push(t.cleanup);
    t.client.write("ping");
    await until(() => t.received.map((r) => r.text).join("") === "ping", 5_000, "the echo");
  });

  it.each(["both", "to-server", "from-server"] as const)("a %s cut holds the bytes without closing, and delivers them in order when healed", async (direction) => {
    const t = await echoThroughProxy();
    cleanups.push(t.cleanup);
    t.proxy.cut(direction);
    t.client.write("a");
    t.client.write("b");
    // Nothing may come back while the cut lasts; the echo would take a millisecond.
    const cutUntil = Date.now() + 300;
    await until(() => Date.now() >= cutUntil || t.received.length > 0, 1_000, "the cut window");
    expect(t.received).toEqual([]);
    expect(t.isClosed()).toBe(false);
    t.proxy.heal();
    await until(() => t.received.map((r) => r.text).join("") === "ab", 5_000, "the held bytes after the heal");
    expect(t.isClosed()).toBe(false);
  });

  it("delays each direction by the given time", async () => {
    const t = await echoThroughProxy();
    cleanups.push(t.cleanup);
    t.proxy.delay("both", 150);
    const sent = Date.now();
    t.client.write("slow");
    await until(() => t.received.length > 0, 5_000, "the delayed echo");
    expect(t.received[0]!.at - sent).toBeGreaterThanOrEqual(290);
    t.proxy.heal();
    expect(t.proxy.faulty).toBe(false);
  });
});

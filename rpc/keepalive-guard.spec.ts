import http2 from "node:http2";
import { once } from "node:events";
import { describe, expect, it } from "vitest";
import { isKeepalivePingRace } from "./keepalive-guard.js";

describe("isKeepalivePingRace", () => {
  it("matches the error Node throws for a ping on a destroyed session, from connect-node's keepalive timer only", async () => {
    const server = http2.createServer();
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const { port } = server.address() as { port: number };
    const session = http2.connect(`http://127.0.0.1:${port}`);
    await once(session, "connect");
    session.destroy();
    let thrown: unknown;
    try {
      session.ping(() => undefined);
    } catch (err) {
      thrown = err;
    }
    server.close();
    expect((thrown as { code: string }).code).toBe("ERR_HTTP2_INVALID_SESSION");
    // Thrown from our own code it is not the race: a real bug must still end the process.
    expect(isKeepalivePingRace(thrown)).toBe(false);
    const fromTimer = Object.assign(new Error("The session has been destroyed"), {
      code: "ERR_HTTP2_INVALID_SESSION",
      stack: "Error [ERR_HTTP2_INVALID_SESSION]: The session has been destroyed\n    at ClientHttp2Session.ping (node:internal/http2/core:1460:13)\n    at commonPing (http2-session-manager.js:433:14)\n    at onPingInterval (http2-session-manager.js:426:9)",
    });
    expect(isKeepalivePingRace(fromTimer)).toBe(true);
    expect(isKeepalivePingRace(Object.assign(new Error("x"), { code: "ECONNRESET", stack: "at commonPing" }))).toBe(false);
  });
});

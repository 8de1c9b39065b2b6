import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { createWritableIterable } from "@connectrpc/connect/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeThrowawayCa, type ThrowawayCa } from "../../cli/dev/throwaway-ca.js";
import { getJson } from "../../cli/dev/https-get.js";
import { silentLogger } from "../../core/log.js";
import { HaAdminService } from "../../gen/autonomy/ha/v1/admin_pb.js";
import { AgentService, type ConnectRequestSchema } from "../../gen/autonomy/ha/v1/agent_pb.js";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import { ServerReflection } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { classifiedAdminMethods } from "../../rpc/auth/access.js";
import { Authenticator, FORWARDED_PRINCIPAL_HEADER } from "../../rpc/auth/authenticator.js";
import { loadClientTls, loadTls } from "../../rpc/auth/tls.js";
import { TokenStore } from "../../rpc/auth/tokens.js";
import { clientFor, type ClientCredentials } from "../../rpc/client.js";
import { HttpRouter } from "../../rpc/http-router.js";
import { serve, type RunningServer } from "../../rpc/server.js";
import { registration, type CallContext } from "../../rpc/service-adapter.js";
import type { MessageInitShape } from "@bufbuild/protobuf";

/*
 * Every guard of the port attacked over real TLS sockets: no credentials, a
 * foreign CA, a wrong or read-only token, a forged forwarding header, a fake
 * coordinator. Each refused call must never reach its handler.
 */

const READ_TOKEN = "read-token-0123456789abcdef";
const ADMIN_TOKEN = "admin-token-0123456789abcdef";

describe("authentication and authorization on one TLS port", () => {
  let ca: ThrowawayCa;
  let foreign: ThrowawayCa;
  let server: RunningServer;
  let tokenFile: string;
  let tokens: TokenStore;
  /** Principals that reached a handler, in order. */
  const reached: string[] = [];
  const certs: Record<string, ClientCredentials> = {};

  const record = (what: string, ctx: CallContext) => reached.push(`${what} ${ctx.principal.name}`);

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), "autonomy-auth-"));
    [ca, foreign] = await Promise.all([makeThrowawayCa(join(dir, "ca")), makeThrowawayCa(join(dir, "foreign"))]);
    const [srv, alice, reader, node1, mallory] = await Promise.all([
      ca.issue("coordinator", "coordinator"),
      ca.issue("alice", "admin"),
      ca.issue("rita", "read"),
      ca.issue("cp-node-1", "agent"),
      foreign.issue("mallory", "admin"),
    ]);
    const client = (c: { cert: string; key: string }, caFile = ca.ca) => ({ tls: loadClientTls({ cert: c.cert, key: c.key, ca: caFile }) });
    certs.alice = client(alice);
    certs.rita = client(reader);
    certs.node1 = client(node1);
    certs.mallory = client(mallory);
    certs.caOnly = { tls: loadClientTls({ cert: undefined, key: undefined, ca: ca.ca }) };
    tokenFile = join(dir, "tokens");
    writeFileSync(tokenFile, `# name role token\nreader read ${READ_TOKEN}\nops admin ${ADMIN_TOKEN}\n`);
    tokens = new TokenStore(tokenFile);
    const admin = registration(HaAdminService, {
      getStatus: async (_req, ctx) => (record("getStatus", ctx), { nodeId: ctx.principal.name }),
      triggerFailover: async (_req, ctx) => (record("triggerFailover", ctx), { success: true, message: ctx.principal.name }),
      detectSplitBrain: async () => ({}),
      recoverSplitBrain: async (_req, ctx) => (record("recoverSplitBrain", ctx), { success: true }),
      queryAudit: async () => ({ events: [] }),
      setMaintenance: async (_req, ctx) => (record("setMaintenance", ctx), { paused: true }),
      getHistory: async () => ({ epochs: [] }),
      listClusters: async () => ({ clusters: [] }),
    });
    const agent = registration(AgentService, {
      async *connect(_requests, ctx) {
        record(`connect nodeId=${ctx.principal.nodeId}`, ctx);
        yield { message: { case: "command", value: { commandId: `hello ${ctx.principal.nodeId}` } } };
      },
    });
    server = await serve({
      host: "127.0.0.1",
      port: 0,
      log: silentLogger(),
      http: new HttpRouter().get("/healthz", () => ({ json: { status: "ok" } })).get("/metrics", () => ({ text: "up 1\n" })),
      services: [admin, agent],
      auth: new Authenticator(loadTls({ cert: srv.cert, key: srv.key, ca: ca.ca }), tokens),
    });
  }, 60_000);

  afterAll(async () => {
    await server?.close();
  });

  const url = () => server.url.replace("127.0.0.1", "localhost");
  const admin = (credentials: ClientCredentials) => clientFor(HaAdminService, url(), { credentials, timeoutMs: 5_000 });
  const failover = { operator: "alice", reason: "test" };

  async function refused(call: Promise<unknown>, code: Code, message: RegExp): Promise<void> {
    const before = reached.length;
    const err = await call.then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(err, "the call was not refused").toBeDefined();
    expect(err!.code).toBe(code);
    expect(err!.rawMessage).toMatch(message);
    expect(reached.slice(before), "a refused call reached its handler").toEqual([]);
  }

  it("an admin certificate may fail over; the handler sees the certificate's subject, not a header", async () => {
    const r = await admin(certs.alice!).triggerFailover(failover, { headers: { "x-autonomy-caller": "root@forged" } });
    expect(r.message).toBe("cert:CN=alice,OU=admin");
  });

  it("no credentials: every call is UNAUTHENTICATED, reflection included, and says what to present", async () => {
    await refused(admin(certs.caOnly!).getStatus({}), Code.Unauthenticated, /client certificate signed by this server's CA .* bearer token/);
    await refused(admin(certs.caOnly!).triggerFailover(failover), Code.Unauthenticated, /no credentials/);
    const reflection = clientFor(ServerReflection, url(), { credentials: certs.caOnly });
    const stream = reflection.serverReflectionInfo(
      (async function* () {
        yield { messageRequest: { case: "listServices" as const, value: "" } };
      })(),
    );
    await refused((async () => { for await (const _ of stream) { /* drain */ } })(), Code.Unauthenticated, /no credentials/);
  });

  it("a certificate from another CA counts as no certificate", async () => {
    const mallory = clientFor(HaAdminService, url(), { credentials: { tls: { ...certs.mallory!.tls!, ca: certs.caOnly!.tls!.ca } }, timeoutMs: 5_000 });
    await refused(mallory.triggerFailover(failover), Code.Unauthenticated, /no credentials/);
  });

  it("a read-only certificate or token may read but not fail over, recover or pause", async () => {
    expect((await admin(certs.rita!).getStatus({})).nodeId).toBe("cert:CN=rita,OU=read");
    const reader = { ...certs.caOnly!, token: READ_TOKEN };
    expect((await admin(reader).getStatus({})).nodeId).toBe("token:reader");
    await refused(admin(certs.rita!).triggerFailover(failover), Code.PermissionDenied, /cert:CN=rita,OU=read may not make this call: it needs the admin role/);
    await refused(admin(reader).recoverSplitBrain({ ...failover, strategy: 2 }), Code.PermissionDenied, /token:reader .* needs the admin role/);
    await refused(admin(reader).setMaintenance({ ...failover, paused: true }), Code.PermissionDenied, /needs the admin role/);
  });

  it("a wrong token is UNAUTHENTICATED even with a valid certificate beside it", async () => {
    await refused(admin({ ...certs.alice!, token: "not-a-token-0123456789" }).getStatus({}), Code.Unauthenticated, /bearer token not recognised/);
  });

  it("an admin token may fail over", async () => {
    expect((await admin({ ...certs.caOnly!, token: ADMIN_TOKEN }).triggerFailover(failover)).message).toBe("token:ops");
  });

  it("only an agent may forward for an operator, and never lends its own agent role", async () => {
    const forged = JSON.stringify({ name: "cert:CN=alice,OU=admin", roles: ["admin", "agent"] });
    // A read-only caller that claims to forward for an admin stays read-only.
    await refused(
      admin(certs.rita!).triggerFailover(failover, { headers: { [FORWARDED_PRINCIPAL_HEADER]: forged } }),
      Code.PermissionDenied,
      /cert:CN=rita,OU=read may not/,
    );
    // An agent forwarding for an admin acts as that admin, named with the agent.
    const viaAgent = await admin(certs.node1!).triggerFailover(failover, { headers: { [FORWARDED_PRINCIPAL_HEADER]: forged } });
    expect(viaAgent.message).toBe("cert:CN=alice,OU=admin via cert:CN=cp-node-1,OU=agent");
    // An agent on its own may not fail over.
    await refused(admin(certs.node1!).triggerFailover(failover), Code.PermissionDenied, /needs the admin role/);
  });

  it("an agent stream needs an agent certificate, whose CN is the node id the handler sees", async () => {
    const open = async (credentials: ClientCredentials) => {
      const requests = createWritableIterable<MessageInitShape<typeof ConnectRequestSchema>>();
      const first: string[] = [];
      for await (const r of clientFor(AgentService, url(), { credentials }).connect(requests)) {
        if (r.message.case === "command") first.push(r.message.value.commandId);
        break;
      }
      requests.close();
      return first;
    };
    expect(await open(certs.node1!)).toEqual(["hello cp-node-1"]);
    await refused(open(certs.alice!), Code.PermissionDenied, /needs the agent role/);
  });

  it("health answers probes on loopback without credentials; gRPC health too", async () => {
    expect(await getJson(`${url()}/healthz`, { ca: certs.caOnly!.tls!.ca })).toEqual({ status: 200, body: { status: "ok" } });
    const health = clientFor(Health, url(), { credentials: certs.caOnly, timeoutMs: 5_000 });
    expect((await health.check({ service: "" })).status).toBe(1);
  });

  it("HTTP: /metrics needs a credential (401 says how), and answers a read token or a certificate", async () => {
    const caPem = certs.caOnly!.tls!.ca;
    const anonymous = await getJson(`${url()}/metrics`, { ca: caPem });
    expect(anonymous.status).toBe(401);
    expect(JSON.stringify(anonymous.body)).toMatch(/bearer token/);
    const withCert = await getJson(`${url()}/metrics`, { ca: caPem, cert: certs.rita!.tls!.cert, key: certs.rita!.tls!.key });
    expect(withCert).toEqual({ status: 200, body: "up 1\n" });
  });

  it("tokens reload: a new file replaces the set at once; a broken file keeps the old set", async () => {
    writeFileSync(tokenFile, `reader read ${READ_TOKEN}-rotated\n`);
    expect(tokens.reload()).toBe(1);
    await refused(admin({ ...certs.caOnly!, token: READ_TOKEN }).getStatus({}), Code.Unauthenticated, /not recognised/);
    expect((await admin({ ...certs.caOnly!, token: `${READ_TOKEN}-rotated` }).getStatus({})).nodeId).toBe("token:reader");
    writeFileSync(tokenFile, "reader read short\n");
    expect(() => tokens.reload()).toThrow(/shorter than 16 characters/);
    expect((await admin({ ...certs.caOnly!, token: `${READ_TOKEN}-rotated` }).getStatus({})).nodeId).toBe("token:reader");
  });

  it("an agent takes orders only from a coordinator certificate: an agent's certificate serving as a coordinator is refused", async () => {
    const fake = await serve({
      host: "127.0.0.1",
      port: 0,
      log: silentLogger(),
      http: new HttpRouter(),
      services: [registration(AgentService, { async *connect() { yield { message: { case: "command", value: { commandId: "resign now" } } }; } })],
      auth: new Authenticator(loadTls({ cert: join(ca.dir, "cp-node-1.agent.crt"), key: join(ca.dir, "cp-node-1.agent.key"), ca: ca.ca }), undefined),
    });
    try {
      const requests = createWritableIterable<MessageInitShape<typeof ConnectRequestSchema>>();
      const commands: string[] = [];
      const err = await (async () => {
        for await (const r of clientFor(AgentService, fake.url.replace("127.0.0.1", "localhost"), { credentials: { ...certs.node1!, serverRole: "coordinator" } }).connect(requests)) {
          if (r.message.case === "command") commands.push(r.message.value.commandId);
        }
      })().then(() => undefined, (e: unknown) => ConnectError.from(e));
      requests.close();
      expect(commands).toEqual([]);
      expect(err?.message).toMatch(/not a coordinator certificate/);
    } finally {
      await fake.close();
    }
  });
});

describe("a port beyond loopback without credentials", () => {
  const base = { port: 0, log: silentLogger(), http: new HttpRouter(), services: [] };

  it("refuses to start, saying why and what to pass", async () => {
    await expect(serve({ ...base, host: "0.0.0.0" })).rejects.toThrow(/refusing to listen on 0\.0\.0\.0:0 without credentials.*--tls-cert.*--token-file.*--insecure-listen/);
  });

  it("starts with --insecure-listen, and says so", async () => {
    const s = await serve({ ...base, host: "0.0.0.0", insecureListen: true });
    expect(s.insecure).toBe(true);
    await s.close();
  });

  it("starts with tokens, and loopback without credentials is not insecure", async () => {
    const dir = mkdtempSync(join(tmpdir(), "autonomy-auth-"));
    writeFileSync(join(dir, "t"), `ops admin ${ADMIN_TOKEN}\n`);
    const withTokens = await serve({ ...base, host: "0.0.0.0", auth: new Authenticator(undefined, new TokenStore(join(dir, "t"))) });
    expect(withTokens.insecure).toBe(false);
    await withTokens.close();
    const loopback = await serve({ ...base, host: "127.0.0.1" });
    expect(loopback.insecure).toBe(false);
    await loopback.close();
  });
});

describe("the access table", () => {
  it("classifies every HaAdminService method as a read or a mutation, so none is open by accident", () => {
    const all = [...classifiedAdminMethods.read, ...classifiedAdminMethods.mutating].sort();
    expect(all).toEqual(HaAdminService.methods.map((m) => m.name).sort());
  });

  it("token files: bad lines are refused with the line number", () => {
    const dir = mkdtempSync(join(tmpdir(), "autonomy-tokens-"));
    const file = join(dir, "t");
    writeFileSync(file, `ops superuser ${ADMIN_TOKEN}\n`);
    expect(() => new TokenStore(file)).toThrow(/t:1: role "superuser" is not one of read, admin, agent/);
    writeFileSync(file, `ops admin ${ADMIN_TOKEN}\nops2 read ${ADMIN_TOKEN}\n`);
    expect(() => new TokenStore(file)).toThrow(/t:2: the token of ops2 is already given to ops/);
  });
});

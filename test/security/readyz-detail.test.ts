import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCoordinator, type RunningCoordinator } from "../../coordinator/start-coordinator.js";
import { freePort, startPgCluster, type PgCluster } from "../../pgcluster/index.js";
import { Authenticator } from "../../rpc/auth/authenticator.js";
import { TokenStore } from "../../rpc/auth/tokens.js";
import { TEST_POLICY } from "../coordinator/support/harness.js";

const READ_TOKEN = "read-token-0123456789abcdef";

/**
 * /readyz answers unauthenticated probes (loopback, and the --health-listen
 * port beyond it), so its seed 004 §5 `cluster` detail (nodes, the server's
 * identity, epochs, region) goes only to a caller with the read role: no
 * credentials, a forged token or the probe port get the readiness alone.
 */
describe("/readyz on a coordinator with credentials", () => {
  let pg: PgCluster;
  let coordinator: RunningCoordinator;
  let dir: string;
  let probePort: number;

  beforeAll(async () => {
    pg = await startPgCluster({ standbys: 0 });
    dir = mkdtempSync(join(tmpdir(), "autonomy-readyz-"));
    writeFileSync(join(dir, "tokens"), `reader read ${READ_TOKEN}\n`);
    probePort = await freePort();
    coordinator = await startCoordinator({
      databaseUrl: pg.primary.url(),
      port: 0,
      auditDir: join(dir, "audit"),
      schema: `readyz_${process.pid}`,
      policy: { ...TEST_POLICY, clusterId: `readyz-${process.pid}` },
      security: { auth: new Authenticator(undefined, new TokenStore(join(dir, "tokens"))), insecureListen: false, healthListen: { host: "127.0.0.1", port: probePort } },
    });
  });
  afterAll(async () => {
    await coordinator?.stop();
    await pg?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const readyz = async (base: string, token?: string) => {
    const r = await fetch(`${base}/readyz`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };

  it("gives the cluster detail to a reader only", async () => {
    const reader = await readyz(coordinator.url, READ_TOKEN);
    expect(reader.status).toBe(200);
    expect(reader.body).toMatchObject({ ready: true, cluster: { writes_usable: false, highest_epoch: expect.any(Number) } });

    for (const [who, base, token] of [
      ["no credentials on loopback", coordinator.url, undefined],
      ["a forged token", coordinator.url, "forged-token-0123456789abcdef"],
      ["the probe port", `http://127.0.0.1:${probePort}`, undefined],
      ["the probe port with a reader's token", `http://127.0.0.1:${probePort}`, READ_TOKEN],
    ] as const) {
      const r = await readyz(base, token).catch((err: unknown) => ({ status: 0, body: { error: String(err) } as Record<string, unknown> }));
      expect(r.body, who).not.toHaveProperty("cluster");
      expect(JSON.stringify(r.body), who).not.toMatch(/system_identifier|highest_epoch|writer/);
    }
  });
});

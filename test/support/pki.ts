import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeThrowawayCa, type ThrowawayCa } from "../../cli/dev/throwaway-ca.js";
import { loadClientTls } from "../../rpc/auth/tls.js";
import type { ClientCredentials } from "../../rpc/client.js";
import { useTestTls } from "./processes.js";

/**
 * mTLS for processes the tests and the bench start: when a PKI is active,
 * AgentProcess and CoordinatorProcess get certificates of their own
 * (CN = node id, OU = agent; OU = coordinator) and https URLs, and clients,
 * getJson and runCli use an admin certificate.
 */
export class TestPki {
  private constructor(
    readonly ca: ThrowawayCa,
    readonly admin: ClientCredentials,
    readonly adminEnv: Record<string, string>,
  ) {}

  static async create(): Promise<TestPki> {
    const ca = await makeThrowawayCa(join(mkdtempSync(join(tmpdir(), "autonomy-pki-")), "pki"));
    const admin = await ca.issue("bench-operator", "admin");
    const env = { AUTONOMY_TLS_CERT: admin.cert, AUTONOMY_TLS_KEY: admin.key, AUTONOMY_TLS_CA: ca.ca };
    return new TestPki(ca, { tls: loadClientTls({ cert: admin.cert, key: admin.key, ca: ca.ca }) }, env);
  }

  /** The TLS flags of a server process with this CN and role. */
  async serverArgs(cn: string, ou: "agent" | "coordinator"): Promise<string[]> {
    const c = await this.ca.issue(cn, ou);
    return ["--tls-cert", c.cert, "--tls-key", c.key, "--tls-ca", this.ca.ca];
  }
}

let active: TestPki | undefined;

/** Makes `pki` (or none) the one every process and client of this test file uses. */
export function useTestPki(pki: TestPki | undefined): void {
  active = pki;
  useTestTls(pki?.adminEnv);
}

export function activePki(): TestPki | undefined {
  return active;
}

/** What a client of the active setup presents: the admin certificate, or nothing. */
export function testCredentials(): ClientCredentials {
  return active?.admin ?? {};
}

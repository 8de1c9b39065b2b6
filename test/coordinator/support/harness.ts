import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { CALLER_HEADER } from "../../../core/metadata.js";
import { createLogger } from "../../../core/log.js";
import { HaAdminService } from "../../../gen/autonomy/ha/v1/admin_pb.js";
import { LeaderService } from "../../../gen/autonomy/ha/v1/leader_pb.js";
import { clientFor } from "../../../rpc/client.js";
import { startCoordinator, type RunningCoordinator } from "../../../coordinator/start-coordinator.js";
import type { CoordinatorPolicy } from "../../../coordinator/config.js";
import { readAuditEvents, type AuditEvent } from "../../../coordinator/audit/index.js";
import { ScriptedAgent, type ScriptedAgentOptions } from "./scripted-agent.js";

let counter = 0;

/** Timings for tests: fast, but not so fast that a loaded 2-core machine trips them. */
export const TEST_POLICY: Partial<CoordinatorPolicy> = {
  pollIntervalMs: 50,
  reportStaleAfterMs: 1_500,
  failureTimeoutMs: 2_000,
  failoverCooldownMs: 0,
  holderMismatchGraceMs: 200,
  designateSuccessor: false,
  operationTimeoutMs: 8_000,
  commandTimeoutMs: 4_000,
  // Scripted agents come and go one by one; the cold-start settle has its own tests.
  settleMs: 0,
};

/**
 * A coordinator in this process on a free port, with its own cluster id and
 * schema in the given database (so tests sharing one PostgreSQL never see each
 * other's lock or rows), its own audit dir, clients, and scripted agents.
 */
export class Harness {
  readonly clusterId: string;
  readonly schema: string;
  readonly agents: ScriptedAgent[] = [];
  coordinator!: RunningCoordinator;
  auditDir!: string;
  private ownAuditDir = true;

  constructor(
    readonly databaseUrl: string,
    private readonly policy: Partial<CoordinatorPolicy> = {},
  ) {
    counter++;
    this.clusterId = `c${process.pid}-${counter}`;
    this.schema = `t${process.pid}_${counter}`;
  }

  /** `auditDir`: use this path instead of a fresh temp dir (e.g. a file, so no audit event can be written). */
  async start(options: { auditDir?: string } = {}): Promise<this> {
    this.auditDir = options.auditDir ?? (await mkdtemp(path.join(os.tmpdir(), "autonomy-coord-audit-")));
    this.ownAuditDir = options.auditDir === undefined;
    const log = process.env.COORDINATOR_TEST_LOG ? createLogger({ name: "coordinator", level: process.env.COORDINATOR_TEST_LOG, destination: process.stderr }) : undefined;
    this.coordinator = await startCoordinator({
      databaseUrl: this.databaseUrl,
      port: 0,
      auditDir: this.auditDir,
      schema: this.schema,
      policy: { ...TEST_POLICY, ...this.policy, clusterId: this.clusterId },
      log,
    });
    return this;
  }

  get url(): string {
    return this.coordinator.url;
  }

  admin(caller = "test-operator") {
    return clientFor(HaAdminService, this.url, { metadata: { [CALLER_HEADER]: caller } });
  }

  leader() {
    return clientFor(LeaderService, this.url);
  }

  async agent(nodeId: string, options: Partial<ScriptedAgentOptions> = {}): Promise<ScriptedAgent> {
    const a = new ScriptedAgent({ nodeId, coordinatorUrl: this.url, databaseUrl: this.databaseUrl, clusterId: this.clusterId, schema: this.schema, ...options });
    this.agents.push(a);
    return a.start();
  }

  /** The audit file's events, once everything the coordinator queued before the call is written. */
  async audit(type?: string): Promise<AuditEvent[]> {
    await this.coordinator.auditWritten();
    return (await readAuditEvents(this.auditDir, { type, limit: 1000 })).events;
  }

  async json<T = Record<string, unknown>>(p: string): Promise<{ status: number; body: T }> {
    const r = await fetch(`${this.url}${p}`);
    return { status: r.status, body: (await r.json()) as T };
  }

  async close(): Promise<void> {
    await Promise.all(this.agents.map((a) => a.stop()));
    await this.coordinator?.stop();
    if (this.ownAuditDir) await rm(this.auditDir, { recursive: true, force: true });
  }
}

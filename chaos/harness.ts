// One chaos run, start to finish: start the cluster, let it settle, play the
// schedule, let it converge, stop everything, read the databases and the
// audit, check the invariants. Whatever happens, everything it started is
// stopped before it returns or throws.

import { systemClock } from "../core/clock.js";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { restartablePort } from "./ports.js";
import { startAgents, type ChaosAgent } from "./agents.js";
import { checkHistory, type CheckResult } from "./checker.js";
import { readAudit, snapshotServer } from "./collect.js";
import { BIN, ensureBuilt } from "../scripts/compiled-cli.js";
import { Coordinators } from "./coordinators.js";
import { ChaosDatabase } from "./database.js";
import type { BlindWindow, ChaosHistory, FaultRecord, HostileOutcome, Promotion } from "./history.js";
import { healEverything, inject } from "./injector.js";
import type { ChaosOptions } from "./options.js";
import { startedPids } from "./process-group.js";
import { ReadySampler } from "./sampler.js";
import { buildSchedule, describeSchedule } from "./schedule.js";
import { formatSummary, summarize, type ChaosSummary } from "./summary.js";
import { CONVERGENCE_BOUND_MS } from "./timings.js";
import { createWritesTable, Workload } from "./workload.js";

export interface ChaosRun {
  readonly history: ChaosHistory;
  readonly result: CheckResult;
  readonly summary: ChaosSummary;
  readonly report: string;
  /** Every process the run started (agents, coordinator, postmasters), all gone when runChaos returns. */
  readonly pids: number[];
}

const FORGER = "cp-node-forger";
/** After the last fault, the run watches this much longer than the I5 bound. */
const OBSERVE_AFTER_BOUND_MS = 3_000;

export async function runChaos(options: ChaosOptions, print: (line: string) => void, signal?: AbortSignal): Promise<ChaosRun> {
  const log = (line: string) => {
    if (options.verbose) print(`[${new Date().toISOString().slice(11, 23)}] ${line}`);
  };
  ensureBuilt((line) => print(`chaos: ${line}`));
  const schedule = buildSchedule({ seed: options.seed, durationMs: options.durationMs, faults: options.faults, nodes: options.nodes });
  print(`chaos: seed ${options.seed}, ${options.durationMs / 1000}s, ${options.nodes} agents, ${schedule.length} faults:\n${describeSchedule(schedule)}`);

  const runDir = mkdtempSync(path.join(os.tmpdir(), "autonomy-chaos-"));
  const logDir = path.join(runDir, "logs");
  const auditDir = path.join(runDir, "audit");
  mkdirSync(logDir);
  mkdirSync(auditDir);
  const nodeIds = Array.from({ length: options.nodes }, (_, i) => `cp-node-${i + 1}`);
  const tokens = new Map([...nodeIds, FORGER].map((id) => [id, randomBytes(24).toString("hex")]));
  const tokenFile = path.join(runDir, "tokens");
  writeFileSync(tokenFile, [...tokens].map(([id, t]) => `${id} agent ${t}`).join("\n") + "\n", { mode: 0o600 });

  let db: ChaosDatabase | undefined;
  let coordinators: Coordinators | undefined;
  let agents: ChaosAgent[] = [];
  let workload: Workload | undefined;
  let sampler: ReadySampler | undefined;
  const faults: FaultRecord[] = [];
  const blindWindows: BlindWindow[] = [];
  const hostile: HostileOutcome[] = [];
  const promotions: Promotion[] = [];
  const notes: string[] = [];
  const startedAt = Date.now();
  let faultsStartedAt = startedAt;
  let faultsEndedAt = startedAt;
  const postmasters = new Set<number>();

  const teardown = async () => {
    sampler?.stop();
    await workload?.stop().catch(() => undefined);
    await Promise.allSettled(agents.map((a) => a.group.stop()));
    await coordinators?.stopAll().catch(() => undefined);
    await Promise.allSettled(agents.flatMap((a) => [...a.databaseProxies, ...a.coordinatorProxies].map((p) => p.close())));
    await db?.close().catch((err: Error) => notes.push(`closing PostgreSQL: ${err.message}`));
  };

  try {
    log(`run directory ${runDir}`);
    db = await ChaosDatabase.start(log);
    await createWritesTable(db.primary);
    const directUrl = `postgres://postgres@${db.servers.map((s) => `127.0.0.1:${s.port}`).join(",")}/postgres?target_session_attrs=read-write`;

    const ports: number[] = [];
    for (let i = 0; i < options.coordinators; i++) ports.push(await restartablePort());
    coordinators = new Coordinators({ bin: BIN, ports, databaseUrl: directUrl, auditDir, tokenFile, logDir, expectNodes: nodeIds });
    coordinators.startAll();
    const coordinatorsRef = coordinators;
    const waitCoordinatorHealthy = () => waitFor(() => coordinatorsRef.healthy(), 30_000, "a coordinator to answer as the active one", signal);
    await waitCoordinatorHealthy();

    agents = await startAgents(options.nodes, { bin: BIN, logDir, databasePorts: db.servers.map((s) => s.port), coordinatorPorts: coordinators.ports, tokens });
    sampler = new ReadySampler(agents.map((a) => ({ nodeId: a.nodeId, url: a.url })));
    sampler.start();
    const samplerRef = sampler;
    await waitFor(async () => samplerRef.currentLeader() !== undefined, 60_000, "a first Write-Ready leader", signal);
    log(`first leader: ${sampler.currentLeader()}`);

    const dbRef = db;
    workload = new Workload({ nodes: agents.map((a) => ({ nodeId: a.nodeId, url: a.url })), primary: () => dbRef.primary, slowWritesMs: options.slowWritesMs, log });
    workload.start();
    const workloadRef = workload;
    await waitFor(async () => workloadRef.attempts.some((w) => w.outcome === "ack"), 30_000, "the workload's first acknowledged write", signal);

    faultsStartedAt = Date.now();
    const ctx = { db, agents, coordinators, workload, sampler, forger: { nodeId: FORGER, token: tokens.get(FORGER)! }, waitCoordinatorHealthy, blindWindows, hostile, promotions, log };
    for (const fault of schedule) {
      const wait = faultsStartedAt + fault.atMs - Date.now();
      if (wait > 0) await abortableSleep(wait, signal);
      if (signal?.aborted) throw new Error("interrupted");
      log(`fault #${fault.index} ${fault.kind}…`);
      const record = await inject(fault, ctx).catch(
        (err: Error): FaultRecord => ({ index: fault.index, kind: fault.kind, startedAt: Date.now(), endedAt: Date.now(), target: "-", detail: `injection failed: ${err.message}`, injected: false }),
      );
      faults.push(record);
      log(`fault #${fault.index} ${fault.kind} on ${record.target}: ${record.detail}`);
      if (!record.injected) await healEverything(ctx);
    }
    // Everything healed: processes running and thawed, proxies clear, the zombie (if any) up.
    await healEverything(ctx);
    faultsEndedAt = Date.now();
    log(`faults over; watching for ${(CONVERGENCE_BOUND_MS + OBSERVE_AFTER_BOUND_MS) / 1000}s`);
    await abortableSleep(CONVERGENCE_BOUND_MS + OBSERVE_AFTER_BOUND_MS, signal);
    if (signal?.aborted) throw new Error("interrupted");

    sampler.stop();
    await workload.stop();
    // The coordinator writes its audit events after acting; stop it before reading them.
    await Promise.allSettled(agents.map((a) => a.group.stop()));
    await coordinators.stopAll();
    for (const s of db.servers) if (s.pid() !== undefined) postmasters.add(s.pid()!);
    const authoritative = db.primary;
    const databases = await Promise.all(db.servers.map((s) => snapshotServer(s, s === authoritative)));
    const history: ChaosHistory = {
      seed: options.seed,
      durationMs: options.durationMs,
      nodes: nodeIds,
      faultKinds: [...options.faults],
      slowWritesMs: options.slowWritesMs,
      schedule,
      startedAt,
      faultsStartedAt,
      faultsEndedAt,
      endedAt: Date.now(),
      convergenceBoundMs: CONVERGENCE_BOUND_MS,
      faults,
      writes: workload.attempts,
      samples: sampler.samples,
      databases,
      audit: readAudit(auditDir),
      blindWindows,
      hostile,
      promotions,
      notes,
    };
    await teardown();
    const result = checkHistory(history);
    const summary = summarize(history, result);
    writeFileSync(options.out, JSON.stringify({ summary, violations: result.violations, history }, null, 1));
    if (options.keep) print(`chaos: logs and audit kept in ${runDir}`);
    else rmSync(runDir, { recursive: true, force: true });
    const pids = [...startedPids(), ...postmasters];
    return { history, result, summary, report: formatSummary(history, summary, result, options.out), pids };
  } catch (err) {
    await teardown();
    print(`chaos: run failed; logs kept in ${runDir}`);
    throw err;
  }
}

function httpOk(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: 1_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(false));
  });
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (signal?.aborted) throw new Error("interrupted");
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
    await abortableSleep(100, signal);
  }
}

function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return systemClock.sleep(ms, signal).catch(() => undefined);
}

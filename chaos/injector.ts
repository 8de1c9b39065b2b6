// Carries out one scheduled fault against the running cluster, waits out its
// duration, heals it, and says what it did. The schedule names roles
// ("leader", "follower"); which node that is gets decided here, at the
// moment of the fault, from what the sampler and the database say.

import { LOCK_CLASS_ID } from "../db/identifiers.js";
import type { ChaosAgent } from "./agents.js";
import type { Coordinators } from "./coordinators.js";
import type { ChaosDatabase } from "./database.js";
import type { BlindWindow, FaultRecord, HostileOutcome, Promotion } from "./history.js";
import { forgedReport, rogueStream } from "./hostile.js";
import type { ReadySampler } from "./sampler.js";
import type { ScheduledFault } from "./schedule.js";
import type { Workload } from "./workload.js";

export interface InjectorContext {
  readonly db: ChaosDatabase;
  readonly agents: readonly ChaosAgent[];
  readonly coordinators: Coordinators;
  readonly workload: Workload;
  readonly sampler: ReadySampler;
  /** An agent token that is valid but belongs to no running node. */
  readonly forger: { nodeId: string; token: string };
  readonly waitCoordinatorHealthy: () => Promise<void>;
  readonly blindWindows: BlindWindow[];
  readonly hostile: HostileOutcome[];
  readonly promotions: Promotion[];
  readonly log: (line: string) => void;
}

/** Time the coordinator needs after it is back to read the cluster again. */
const COORDINATOR_CATCH_UP_MS = 3_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function inject(fault: ScheduledFault, ctx: InjectorContext): Promise<FaultRecord> {
  const startedAt = Date.now();
  const done = (target: string, detail: string, injected = true): FaultRecord => ({
    index: fault.index,
    kind: fault.kind,
    startedAt,
    endedAt: Date.now(),
    target,
    detail,
    injected,
  });
  const agent = await pickAgent(fault, ctx);
  switch (fault.kind) {
    case "kill-leader":
    case "kill-follower": {
      if (!agent) return done("-", "no such node running", false);
      await agent.group.kill();
      await sleep(fault.durationMs);
      agent.group.start();
      return done(agent.nodeId, `SIGKILL, restarted after ${fault.durationMs}ms`);
    }
    case "stop-leader":
    case "stop-follower": {
      if (!agent) return done("-", "no such node running", false);
      agent.group.signal("SIGSTOP");
      await sleep(fault.durationMs);
      agent.group.signal("SIGCONT");
      return done(agent.nodeId, `SIGSTOP for ${fault.durationMs}ms, then SIGCONT`);
    }
    case "kill-coordinator":
    case "stop-coordinator": {
      // The active one: a standby takes over while it is down.
      const active = await ctx.coordinators.active();
      if (!active) return done("coordinator", "no coordinator is active", false);
      if (fault.kind === "kill-coordinator") {
        await active.group.kill();
        await sleep(fault.durationMs);
        ctx.coordinators.restartMissing();
      } else {
        active.group.signal("SIGSTOP");
        await sleep(fault.durationMs);
        active.group.signal("SIGCONT");
      }
      await ctx.waitCoordinatorHealthy();
      ctx.blindWindows.push({ from: startedAt, to: Date.now() + COORDINATOR_CATCH_UP_MS, why: `#${fault.index} ${fault.kind}` });
      const next = await ctx.coordinators.active();
      return done(active.group.options.name, `${fault.kind === "kill-coordinator" ? "SIGKILL, restarted" : "SIGSTOP, SIGCONT"} after ${fault.durationMs}ms; active now: ${next?.group.options.name ?? "none"}`);
    }
    case "cut-agent-db":
    case "delay-agent-db":
    case "cut-agent-coordinator":
    case "delay-agent-coordinator": {
      if (!agent) return done("-", "no such node running", false);
      // Cut off from the database, or from every coordinator of the tier.
      const proxies = fault.kind.endsWith("-db") ? agent.databaseProxies : agent.coordinatorProxies;
      const direction = fault.direction ?? "both";
      for (const p of proxies) {
        if (fault.kind.startsWith("cut")) p.cut(direction);
        else p.delay(direction, fault.delayMs ?? 200);
      }
      await sleep(fault.durationMs);
      for (const p of proxies) p.heal();
      const what = fault.kind.startsWith("cut") ? "cut" : `delayed ${fault.delayMs}ms`;
      return done(agent.nodeId, `${proxies.map((p) => p.name).join(", ")} ${what} (${direction}) for ${fault.durationMs}ms`);
    }
    case "db-restart-fast":
    case "db-restart-immediate": {
      const mode = fault.kind === "db-restart-fast" ? "fast" : "immediate";
      const name = ctx.db.primary.name;
      await ctx.db.restartPrimary(mode);
      return done(name, `restarted in ${mode} mode in ${Date.now() - startedAt}ms`);
    }
    case "db-promote": {
      if (!ctx.db.standby) return done("-", "no standby left to promote", false);
      const standbyWasSync = await ctx.db.standbyIsSync();
      const promotedAt = Date.now();
      const { from, to } = await ctx.db.crashAndPromote();
      ctx.promotions.push({ at: promotedAt, from, to, standbyWasSync });
      ctx.log(`promoted ${to}; ${from} returns as a zombie in ${fault.durationMs}ms`);
      await sleep(fault.durationMs);
      await ctx.db.returnZombie();
      return done(`${from}→${to}`, `SIGKILL ${from}, promoted ${to} (was ${standbyWasSync ? "" : "not "}sync), ${from} back as a zombie after ${fault.durationMs}ms`);
    }
    case "db-lock-ha-tables": {
      const name = ctx.db.primary.name;
      await ctx.db.lockHaTables(fault.durationMs);
      return done(name, `ACCESS EXCLUSIVE on leadership_state, leader_epochs for ${fault.durationMs}ms`);
    }
    case "db-pause-postmaster": {
      const name = ctx.db.primary.name;
      ctx.db.pausePostmaster();
      try {
        await sleep(fault.durationMs);
      } finally {
        ctx.db.resumePostmaster();
      }
      return done(name, `postmaster SIGSTOP for ${fault.durationMs}ms`);
    }
    case "slow-leader": {
      if (!agent) return done("-", "no leader", false);
      agent.blockEventLoop(fault.durationMs);
      await sleep(fault.durationMs);
      return done(agent.nodeId, `event loop blocked for ${fault.durationMs}ms`);
    }
    case "slow-writes": {
      ctx.workload.extraSleepMs = fault.delayMs ?? 200;
      await sleep(fault.durationMs);
      ctx.workload.extraSleepMs = 0;
      return done("workload", `every transaction sleeps ${fault.delayMs}ms inside for ${fault.durationMs}ms`);
    }
    case "rogue-stream": {
      const { epoch, pid } = await currentClaim(ctx);
      const victim = agent?.nodeId ?? ctx.agents[0]!.nodeId;
      const outcome = await rogueStream(await ctx.coordinators.anyUrl(), victim, epoch + 1_000_000n, pid, fault.durationMs);
      ctx.hostile.push(outcome);
      return done("coordinator", `as ${victim}: ${outcome.detail}`);
    }
    case "forged-report": {
      const { epoch, pid } = await currentClaim(ctx);
      const outcome = await forgedReport(await ctx.coordinators.anyUrl(), { ...ctx.forger, epoch, lockBackendPid: pid }, fault.durationMs);
      ctx.hostile.push(outcome);
      return done("coordinator", outcome.detail);
    }
  }
}

/** The agent a fault acts on: the leader, or the follower the schedule picked (among those running). */
async function pickAgent(fault: ScheduledFault, ctx: InjectorContext): Promise<ChaosAgent | undefined> {
  if (!fault.role) return undefined;
  const running = ctx.agents.filter((a) => a.group.running && !a.group.paused);
  const leaderId = ctx.sampler.currentLeader() ?? (await holderInDatabase(ctx));
  const leader = running.find((a) => a.nodeId === leaderId);
  if (fault.role === "leader") return leader;
  const followers = running.filter((a) => a !== leader);
  return followers.length > 0 ? followers[(fault.follower ?? 0) % followers.length] : undefined;
}

async function holderInDatabase(ctx: InjectorContext): Promise<string | undefined> {
  const rows = await ctx.db.primary.query<{ holder_id: string | null }>("SELECT holder_id FROM leadership_state LIMIT 1").catch(() => []);
  return rows[0]?.holder_id ?? undefined;
}

/** The current epoch and the leader's lock session pid, for a hostile claim to build on. */
async function currentClaim(ctx: InjectorContext): Promise<{ epoch: bigint; pid: number }> {
  const rows = await ctx.db.primary
    .query<{ epoch: string; pid: number | null }>(
      `SELECT (SELECT coalesce(max(epoch), 0) FROM leader_epochs)::text AS epoch,
              (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 AND classid::bigint = ${LOCK_CLASS_ID} AND granted LIMIT 1) AS pid`,
    )
    .catch(() => []);
  return { epoch: BigInt(rows[0]?.epoch ?? "0"), pid: rows[0]?.pid ?? 0 };
}

/**
 * Undo whatever a fault may have left behind: after an injection that threw
 * halfway, and once the schedule is over, so the convergence watch starts
 * from a cluster with nothing broken.
 */
export async function healEverything(ctx: InjectorContext): Promise<void> {
  for (const a of ctx.agents) {
    for (const p of [...a.databaseProxies, ...a.coordinatorProxies]) p.heal();
    if (a.group.paused) a.group.signal("SIGCONT");
    if (!a.group.running) a.group.start();
  }
  ctx.coordinators.restartMissing();
  ctx.db.resumePostmaster();
  if (!ctx.db.primary.isRunning()) await ctx.db.primary.start();
  await ctx.db.returnZombie();
  ctx.workload.extraSleepMs = 0;
}

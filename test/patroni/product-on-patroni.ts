// Our product running on a Patroni cluster: optionally a coordinator, three
// agents on the multi-host URL, a fenced writer per agent and a sampler of
// their health. It drives Patroni's two moves (a crash of the primary, a
// switchover) and returns what happened with timestamps; the test asserts on
// that, the benchmark summarises it.

import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { waitFor } from "../../core/clock.js";
import { freePort } from "../../pgcluster/index.js";
import { AgentProcess } from "../support/agents.js";
import { PatroniCluster, type PatroniMember, type PatroniTimings } from "../support/patroni.js";
import { spawnAutonomy, waitHealthy, type AutonomyProcess } from "../support/processes.js";
import { allCommits, createWritesTable, epochDrops, FencedWriter, iso, LeaderSampler, now, overlaps, WRITES_TABLE, type Commit } from "./fenced-writes.js";

/** Coordinator timings for a test: a leader silent 3 s is dead (the default 30 s would dwarf Patroni's ttl). */
export const COORDINATOR_TIMINGS = ["--poll-interval", "100ms", "--failure-timeout", "3s", "--report-stale-after", "1500ms", "--intruder-grace", "1500ms", "--failover-cooldown", "2s"];
export const NODES = ["pg-node-1", "pg-node-2", "pg-node-3"];

export interface ProductOnPatroniOptions {
  /** Run a coordinator (on the multi-host URL too) and attach the agents to it. */
  readonly coordinator: boolean;
  readonly timings?: PatroniTimings;
}

/** One move of the primary by Patroni, as Patroni and as our product saw it. */
export interface PrimaryMove {
  readonly kind: "crash" | "switchover";
  /** Patroni's primary before, and the member it promoted. */
  readonly from: string;
  readonly to: string;
  /** When the kill was sent, or patronictl started. */
  readonly startedAt: number;
  /** When Patroni's REST API first reported `to` as the running leader. */
  readonly patroniReportedAt: number;
  /** The highest epoch any agent was Write-Ready at, or any write committed at, before startedAt. */
  readonly epochBefore: number;
  /** The last fenced write committed on the old primary, and the first on the new one. */
  readonly lastBefore: Commit | undefined;
  readonly firstAfter: Commit;
  /** Writes acknowledged on the old primary that the promoted one does not have (asynchronous replication). */
  readonly lostCommits: number;
}

export class ProductOnPatroni {
  readonly agents: AgentProcess[] = [];
  writers: FencedWriter[] = [];
  sampler: LeaderSampler | undefined;
  coordinator: AutonomyProcess | undefined;
  private auditDir: string | undefined;
  /** When the previous move of the primary was over: writes before it belong to an earlier primary. */
  private lastMoveAt = 0;

  private constructor(readonly patroni: PatroniCluster) {}

  static async start(options: ProductOnPatroniOptions): Promise<ProductOnPatroni> {
    const patroni = await PatroniCluster.start({ timings: options.timings });
    const product = new ProductOnPatroni(patroni);
    try {
      await createWritesTable((await patroni.waitForLeader()).url());
      let coordinatorUrl: string | undefined;
      if (options.coordinator) {
        product.auditDir = await mkdtemp(path.join(os.tmpdir(), "autonomy-patroni-audit-"));
        const port = await freePort();
        coordinatorUrl = `http://127.0.0.1:${port}`;
        product.coordinator = spawnAutonomy("coordinator", [
          "coordinator", "--database-url", patroni.multiHostUrl, "--listen", `127.0.0.1:${port}`, "--audit-dir", product.auditDir, ...COORDINATOR_TIMINGS,
        ]);
        await waitHealthy(product.coordinator, coordinatorUrl);
      }
      product.agents.push(...(await Promise.all(NODES.map((nodeId) => AgentProcess.start({ nodeId, databaseUrl: patroni.multiHostUrl, coordinatorUrl })))));
      product.sampler = new LeaderSampler(product.agents).start();
      product.writers = product.agents.map((a) => new FencedWriter(a, patroni.multiHostUrl).start());
      return product;
    } catch (err) {
      await product.close();
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.sampler?.stop();
    await Promise.all(this.writers.map((w) => w.stop()));
    await Promise.all(this.agents.map((a) => a.process.stop()));
    await this.coordinator?.stop();
    await this.patroni.close();
    if (this.auditDir) await rm(this.auditDir, { recursive: true, force: true });
  }

  /** Stops the workload and the sampler, keeping what they recorded. */
  async stopWorkload(): Promise<void> {
    await this.sampler?.stop();
    await Promise.all(this.writers.map((w) => w.stop()));
  }

  /** The last lines of every process's output, for a failure message. */
  evidence(): string {
    const procs = [this.coordinator, ...this.agents.map((a) => a.process)].filter((p): p is AutonomyProcess => p !== undefined);
    return [...procs.map((p) => `--- ${p.name} ---\n${p.tail(25)}`), this.patroni.logs(15)].join("\n");
  }

  private withEvidence<T>(p: Promise<T>): Promise<T> {
    return p.catch((err: unknown) => {
      throw new Error(`${(err as Error).message}\n${this.evidence()}`);
    });
  }

  /** One Write-Ready agent, the same in five consecutive samples, with writes committing: its node and epoch. */
  steadyLeader(timeoutMs = 60_000): Promise<{ node: string; epoch: number }> {
    return this.withEvidence(
      waitFor(
        () => {
          const last = this.sampler!.samples.slice(-5);
          const ids = last.map((s) => (s.writeReady.length === 1 ? `${s.writeReady[0]!.node}@${s.writeReady[0]!.epoch}` : ""));
          const steady = last.length === 5 && ids.every((l) => l !== "" && l === ids[0]);
          const writing = this.writers.some((w) => (w.commits.at(-1)?.startedAt ?? 0) >= last[0]!.startedAt);
          return steady && writing ? last[4]!.writeReady[0]! : undefined;
        },
        { timeoutMs, intervalMs: 50, what: "one Write-Ready agent in five consecutive samples, with fenced writes committing" },
      ),
    );
  }

  /** The first fenced write that started at `since` or later and committed on `member`. */
  firstCommitOn(member: PatroniMember, since: number): Commit | undefined {
    const server = `127.0.0.1:${member.pgPort}`;
    let first: Commit | undefined;
    for (const w of this.writers) {
      for (let i = w.commits.length - 1; i >= 0 && w.commits[i]!.startedAt >= since; i--) {
        const c = w.commits[i]!;
        if (c.server === server && (first === undefined || c.committedAt < first.committedAt)) first = c;
      }
    }
    return first;
  }

  /** The last fenced write committed on `member` before `t`. */
  lastCommitOn(member: PatroniMember, t: number): Commit | undefined {
    const server = `127.0.0.1:${member.pgPort}`;
    let last: Commit | undefined;
    for (const w of this.writers) {
      for (let i = w.commits.length - 1; i >= 0; i--) {
        const c = w.commits[i]!;
        if (c.server !== server || c.committedAt >= t) continue;
        if (last === undefined || c.committedAt > last.committedAt) last = c;
        break;
      }
    }
    return last;
  }

  highestEpochBefore(t: number): number {
    let highest = 0;
    for (const s of this.sampler!.samples) if (s.endedAt <= t) for (const w of s.writeReady) highest = Math.max(highest, w.epoch);
    for (const w of this.writers) for (const c of w.commits) if (c.committedAt <= t) highest = Math.max(highest, c.epoch);
    return highest;
  }

  /** Kills Patroni's primary (Patroni and postmaster, SIGKILL) and waits for fenced writes on the member Patroni promotes. */
  async crashPrimary(timeoutMs = 60_000): Promise<PrimaryMove> {
    await this.withEvidence(this.patroni.waitAllRunning());
    await this.steadyLeader();
    const from = await this.patroni.waitForLeader();
    const startedAt = now();
    await this.patroni.member(from.name).crash();
    const to = await this.withEvidence(this.patroni.waitForLeader({ not: from.name, timeoutMs, intervalMs: 20 }));
    const patroniReportedAt = now();
    const firstAfter = await this.waitForWritesOn(to, startedAt, timeoutMs);
    const lastBefore = this.lastCommitOn(from, startedAt + 1);
    const acknowledged = this.writers.flatMap((w) => w.commits.filter((c) => c.server === `127.0.0.1:${from.pgPort}` && c.startedAt >= this.lastMoveAt).map((c) => c.id));
    const kept = await this.patroni.query<{ n: string }>(to.name, `SELECT count(*) AS n FROM ${WRITES_TABLE} WHERE id = ANY($1::bigint[])`, [acknowledged]);
    const lostCommits = acknowledged.length - Number(kept[0]?.n ?? 0);
    this.lastMoveAt = now();
    return { kind: "crash", from: from.name, to: to.name, startedAt, patroniReportedAt, epochBefore: this.highestEpochBefore(startedAt), lastBefore, firstAfter, lostCommits };
  }

  /** Starts a crashed member's Patroni again and waits until it streams from the leader as a replica. */
  async rejoin(name: string): Promise<void> {
    this.patroni.restartMember(name);
    await this.withEvidence(this.patroni.waitAllRunning());
  }

  /** `patronictl switchover` to a replica; waits for fenced writes on it. */
  async switchover(timeoutMs = 60_000): Promise<PrimaryMove & { patronictl: string }> {
    // As an operator would check `patronictl list` first: a candidate that
    // has not caught up with the leader's timeline would be promoted from an
    // older history (Patroni 3.0.2 only compares its lag with maximum_lag_on_failover).
    await this.withEvidence(this.patroni.waitAllRunning());
    await this.steadyLeader();
    const from = await this.patroni.waitForLeader();
    const candidate = this.patroni.members.find((m) => m.name !== from.name)!;
    const startedAt = now();
    // Patroni's view is watched while patronictl runs: it returns only after the candidate leads.
    let patroniReportedAt = 0;
    const watch = this.patroni.waitForLeader({ not: from.name, timeoutMs, intervalMs: 20 }).then((m) => ((patroniReportedAt = now()), m));
    const patronictl = await this.withEvidence(this.patroni.switchover(candidate.name, from.name));
    if (!patronictl.includes(`Successfully switched over to "${candidate.name}"`)) throw new Error(`patronictl switchover did not succeed:\n${patronictl}\n${this.evidence()}`);
    const to = await this.withEvidence(watch);
    const firstAfter = await this.waitForWritesOn(to, startedAt, timeoutMs);
    const lastBefore = this.lastCommitOn(from, firstAfter.committedAt);
    this.lastMoveAt = now();
    return { kind: "switchover", from: from.name, to: to.name, startedAt, patroniReportedAt, epochBefore: this.highestEpochBefore(startedAt), lastBefore, firstAfter, lostCommits: 0, patronictl };
  }

  private waitForWritesOn(member: PatroniMember, since: number, timeoutMs: number): Promise<Commit> {
    return this.withEvidence(
      waitFor(() => this.firstCommitOn(member, since), { timeoutMs, intervalMs: 10, what: `a fenced write committed on ${member.name} (127.0.0.1:${member.pgPort}) after ${iso(since)}` }),
    );
  }

  /** Every epoch an agent was Write-Ready at, or a write committed at, from `t` on, in order. */
  termsSince(t: number): number[] {
    const epochs = new Set<number>();
    for (const s of this.sampler!.samples) if (s.startedAt >= t) for (const w of s.writeReady) epochs.add(w.epoch);
    for (const w of this.writers) for (const c of w.commits) if (c.startedAt >= t) epochs.add(c.epoch);
    return [...epochs].sort((a, b) => a - b);
  }

  /** The coordinator's and agents' log lines about terms, holds and superseded databases since `t`, for a failure message. */
  leadershipLog(t: number): string {
    const procs = [this.coordinator, ...this.agents.map((a) => a.process)].filter((p): p is AutonomyProcess => p !== undefined);
    const lines: { time: number; text: string }[] = [];
    for (const p of procs) {
      for (const line of p.output) {
        if (!/held|hold|supersede|acquired|leader changed|leader lost|promot/i.test(line)) continue;
        const time = Number(/"time":(\d+)/.exec(line)?.[1] ?? 0);
        if (time >= t) lines.push({ time, text: `${p.name}: ${line.slice(0, 400)}` });
      }
    }
    return lines.sort((a, b) => a.time - b.time).slice(-40).map((l) => l.text).join("\n");
  }

  /** Samples in which two agents were Write-Ready at once, as text (empty: never). */
  overlaps(): string[] {
    return overlaps(this.sampler!.samples).map((s) => `${iso(s.startedAt)}: ${s.writeReady.map((w) => `${w.node}@${w.epoch}`).join(", ")}`);
  }

  /** Where an epoch fell, in the sampled health or in commit order (empty: never). */
  epochDrops(): string[] {
    return epochDrops(this.sampler!.samples, allCommits(this.writers));
  }
}

import { waitFor } from "../../core/clock.js";
import { CandidateSet } from "./candidate-process.js";
import { firstCommit, lastCommit, WriteLoop, type WriteStatements } from "./write-loop.js";

export interface CandidateBenchOptions {
  /** For progress lines. */
  readonly system: string;
  /** The candidate script (a TypeScript file run with tsx) and its environment. */
  readonly script: URL;
  readonly env: Record<string, string>;
  /** Where each node's application writes while its candidate leads. */
  readonly databaseUrl: string;
  readonly write: WriteStatements;
  readonly rounds: number;
  readonly nodes?: readonly string[];
  /** How long a candidate that resigned waits before it campaigns again. */
  readonly rejoinAfterMs?: number;
}

export interface HandoverSamples {
  /** SIGKILL of the leader → another candidate's "elected" arriving here. */
  readonly crash: number[];
  /** Resign: the old leader's last committed write → the new leader's first. */
  readonly switchover: number[];
}

/**
 * Crash and switchover rounds for an election that runs as candidate
 * processes (the floor, the etcd3 election), each node with its application
 * writing while its candidate says it leads.
 */
export async function candidateBench(o: CandidateBenchOptions): Promise<HandoverSamples> {
  const nodes = o.nodes ?? ["node-1", "node-2", "node-3"];
  const rejoinAfterMs = o.rejoinAfterMs ?? 500;
  const set = new CandidateSet(o.script, o.env);
  const writers = new Map(nodes.map((n) => [n, new WriteLoop(n, o.databaseUrl, o.write).start()]));
  const loops = [...writers.values()];
  set.onEvent((e) => {
    if (e.message.kind === "elected") writers.get(e.node)?.setPermit({ epoch: e.message.term });
    else if (e.message.kind === "resigning" || e.message.kind === "error") writers.get(e.node)?.setPermit(undefined);
  });
  const crash: number[] = [];
  const switchover: number[] = [];
  const steadyLeader = () =>
    waitFor(
      () => {
        const leader = set.leader();
        const w = leader ? writers.get(leader) : undefined;
        return w && (w.commits.at(-1)?.committedAt ?? 0) > performance.now() - 100 ? leader : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 20, what: `${o.system}: one leader, its application writing` },
    );
  try {
    for (const n of nodes) await set.start(n);
    for (let round = 0; round < o.rounds; round++) {
      const leader = await steadyLeader();
      await pause(200);
      // The node dies with its application.
      writers.get(leader)!.setPermit(undefined);
      const killedAt = performance.now();
      await set.kill(leader);
      const elected = await set.nextElected(killedAt, 120_000, leader);
      crash.push(elected.at - killedAt);
      process.stderr.write(`bench:peers: ${o.system} crash ${round + 1}/${o.rounds}: ${leader} → ${elected.node} ${(elected.at - killedAt).toFixed(1)} ms\n`);
      await set.start(leader);
    }
    for (let round = 0; round < o.rounds; round++) {
      const leader = await steadyLeader();
      await pause(200);
      const startedAt = performance.now();
      set.resign(leader, rejoinAfterMs);
      const elected = await set.nextElected(startedAt, 120_000, leader);
      const first = await waitFor(() => firstCommit(loops, startedAt, (c) => c.node === elected.node), { timeoutMs: 30_000, intervalMs: 2, what: `${o.system}: a write by ${elected.node}` });
      const last = lastCommit(loops, first.committedAt, (c) => c.node === leader);
      if (!last) throw new Error(`${o.system}: no write by ${leader} before the switchover`);
      switchover.push(first.committedAt - last.committedAt);
      process.stderr.write(`bench:peers: ${o.system} switchover ${round + 1}/${o.rounds}: ${leader} → ${elected.node}, write gap ${(first.committedAt - last.committedAt).toFixed(1)} ms\n`);
      await pause(rejoinAfterMs + 300);
    }
  } finally {
    await Promise.all(loops.map((w) => w.stop()));
    await set.stopAll();
  }
  return { crash, switchover };
}

function pause(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

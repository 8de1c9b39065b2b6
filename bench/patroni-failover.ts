import { FAST_TIMINGS } from "../test/support/agents.js";
import { FAST_PATRONI, patroniToolVersion } from "../test/support/patroni.js";
import { COORDINATOR_TIMINGS, ProductOnPatroni, type PrimaryMove } from "../test/patroni/product-on-patroni.js";
import { summarize, type BenchResult } from "./stats.js";

/**
 * Our product on Patroni, end to end: three PostgreSQL members under Patroni
 * (etcd, ttl 5 / loop_wait 1 / retry_timeout 2), three agents on the
 * multi-host URL, each with an application doing fenced writes back to back
 * while its agent is Write-Ready. Measured per setup (agents alone, and with
 * a coordinator):
 *
 * - crash: SIGKILL of Patroni and postmaster on the primary → the first
 *   fenced write accepted on the server Patroni promoted; beside it Patroni's
 *   own figure (kill → its REST API reports the new leader running) and the
 *   difference, which is our part;
 * - switchover: `patronictl switchover` → the write gap, last fenced write on
 *   the old primary → first on the new one; beside it Patroni's own figure.
 *
 * Between crash rounds the killed member rejoins as a replica. BENCH_PATRONI_ROUNDS
 * (default 5) sets the rounds of each.
 */
export async function patroniFailoverBench(rounds = Number(process.env.BENCH_PATRONI_ROUNDS ?? 5)): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  for (const coordinator of [false, true]) results.push(...(await oneSetup(coordinator, rounds)));
  return results;
}

async function oneSetup(coordinator: boolean, rounds: number): Promise<BenchResult[]> {
  const setup = coordinator ? "coordinator + 3 agents" : "3 agents, no coordinator";
  const crashes: PrimaryMove[] = [];
  const switchovers: PrimaryMove[] = [];
  let error: string | undefined;
  let product: ProductOnPatroni | undefined;
  try {
    product = await ProductOnPatroni.start({ coordinator });
    for (let round = 0; round < rounds; round++) {
      const move = await product.crashPrimary();
      crashes.push(move);
      process.stderr.write(`bench: patroni [${setup}] crash ${round + 1}/${rounds}: ${line(move)}\n`);
      await product.rejoin(move.from);
    }
    for (let round = 0; round < rounds; round++) {
      const move = await product.switchover();
      switchovers.push(move);
      process.stderr.write(`bench: patroni [${setup}] switchover ${round + 1}/${rounds}: ${line(move)}\n`);
    }
    const overlaps = product.overlaps();
    const drops = product.epochDrops();
    if (overlaps.length > 0 || drops.length > 0) error = `invariants broken: ${[...overlaps, ...drops].slice(0, 5).join("; ")}`;
  } catch (err) {
    // One setup failing (e.g. the coordinator refusing the multi-host URL)
    // is a finding to print, not a reason to lose the other's figures.
    error = (err as Error).message.split("\n")[0];
    process.stderr.write(`bench: patroni [${setup}] failed: ${(err as Error).message.split("\n").slice(0, 3).join(" / ")}\n`);
  } finally {
    await product?.close();
  }

  const settings = {
    setup,
    rounds,
    patroni: { ...FAST_PATRONI, version: patroniToolVersion("patroni"), etcd: patroniToolVersion("etcd") },
    agentTimings: FAST_TIMINGS.join(" "),
    ...(coordinator ? { coordinatorTimings: COORDINATOR_TIMINGS.join(" ") } : {}),
    acknowledgedWritesLostOnCrash: crashes.map((m) => m.lostCommits),
    epochs: [...crashes, ...switchovers].map((m) => `${m.epochBefore}→${m.firstAfter.epoch}`),
    ...(error ? { error } : {}),
  };
  const ok = error === undefined ? undefined : false;
  const result = (name: string, samples: number[]): BenchResult => ({ name: `${name} [${setup}]`, target: "-", unit: "ms", summary: summarize(samples), samples, settings, pass: ok });
  return [
    result("Patroni crash → first fenced write on the promoted server", crashes.map((m) => m.firstAfter.committedAt - m.startedAt)),
    result("Patroni crash → Patroni reports the new leader (its REST API)", crashes.map((m) => m.patroniReportedAt - m.startedAt)),
    result("Patroni crash: new leader reported → first fenced write (ours)", crashes.map((m) => m.firstAfter.committedAt - m.patroniReportedAt)),
    result("Patroni switchover write gap (last fenced write → first)", switchovers.map((m) => m.firstAfter.committedAt - m.lastBefore!.committedAt)),
    result("Patroni switchover → Patroni reports the new leader", switchovers.map((m) => m.patroniReportedAt - m.startedAt)),
  ];
}

function line(m: PrimaryMove): string {
  const gap = m.lastBefore ? (m.firstAfter.committedAt - m.lastBefore.committedAt).toFixed(0) : "?";
  return (
    `${m.from} → ${m.to}, Patroni ${(m.patroniReportedAt - m.startedAt).toFixed(0)} ms, first fenced write ${(m.firstAfter.committedAt - m.startedAt).toFixed(0)} ms ` +
    `(epoch ${m.epochBefore} → ${m.firstAfter.epoch}), write gap ${gap} ms, lost ${m.lostCommits}`
  );
}


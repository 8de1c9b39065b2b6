import pg from "pg";
import { waitFor } from "../../core/clock.js";
import { PatroniCluster, type PatroniTimings } from "../../test/support/patroni.js";
import { CREATE_WRITES_TABLE, firstCommit, lastCommit, plainInsert, WriteLoop } from "./write-loop.js";

export interface PatroniSamples {
  /** SIGKILL of Patroni and postmaster on the primary → first write committed on the promoted server. */
  readonly crash: number[];
  /** `patronictl switchover`: last write committed on the old primary → first on the new one. */
  readonly switchover: number[];
}

/**
 * Patroni alone, as its users run it: an application on the multi-host URL
 * (target_session_attrs=read-write) writing back to back, reconnecting after
 * an error. Patroni promotes a database as well as choosing a leader; that is
 * part of its figures. `during` runs with the cluster up (the etcd3 election
 * shares its etcd and database).
 */
export async function patroniBench(
  label: string,
  timings: PatroniTimings,
  rounds: number,
  during?: (cluster: PatroniCluster) => Promise<void>,
): Promise<PatroniSamples> {
  const cluster = await PatroniCluster.start({ timings });
  const writer = new WriteLoop("app", cluster.multiHostUrl, plainInsert);
  const crash: number[] = [];
  const switchover: number[] = [];
  const serverOf = (name: string) => `127.0.0.1:${cluster.member(name).pgPort}`;
  const writingOn = (name: string) =>
    waitFor(() => (writer.commits.at(-1)?.server === serverOf(name) && writer.commits.at(-1)!.committedAt > performance.now() - 200 ? true : undefined), {
      timeoutMs: 120_000,
      intervalMs: 20,
      what: `writes committing on ${name}`,
    });
  try {
    const setup = new pg.Client({ connectionString: (await cluster.waitForLeader()).url() });
    await setup.connect();
    await setup.query(CREATE_WRITES_TABLE);
    await setup.end();
    if (during) await during(cluster);
    writer.start().setPermit({ epoch: 0 });
    for (let round = 0; round < rounds; round++) {
      await cluster.waitAllRunning(240_000);
      const from = await cluster.waitForLeader();
      await writingOn(from.name);
      const killedAt = performance.now();
      await from.crash();
      const first = await waitFor(() => firstCommit([writer], killedAt, (c) => c.server !== serverOf(from.name)), {
        timeoutMs: 180_000,
        intervalMs: 10,
        what: "a write committed on the promoted server",
      });
      crash.push(first.committedAt - killedAt);
      process.stderr.write(`bench:peers: ${label} crash ${round + 1}/${rounds}: ${from.name} killed, first write on ${first.server} after ${(first.committedAt - killedAt).toFixed(0)} ms\n`);
      cluster.restartMember(from.name);
    }
    for (let round = 0; round < rounds; round++) {
      await cluster.waitAllRunning(240_000);
      const from = await cluster.waitForLeader();
      await writingOn(from.name);
      const candidate = cluster.members.find((m) => m.name !== from.name)!;
      const startedAt = performance.now();
      const out = await cluster.switchover(candidate.name, from.name);
      if (!out.includes(`Successfully switched over to "${candidate.name}"`)) throw new Error(`patronictl switchover did not succeed:\n${out}`);
      const first = await waitFor(() => firstCommit([writer], startedAt, (c) => c.server === serverOf(candidate.name)), { timeoutMs: 120_000, intervalMs: 10, what: `a write committed on ${candidate.name}` });
      const last = lastCommit([writer], first.committedAt, (c) => c.server === serverOf(from.name));
      if (!last) throw new Error(`no write on ${from.name} before the switchover`);
      switchover.push(first.committedAt - last.committedAt);
      process.stderr.write(`bench:peers: ${label} switchover ${round + 1}/${rounds}: ${from.name} → ${candidate.name}, write gap ${(first.committedAt - last.committedAt).toFixed(0)} ms\n`);
    }
  } finally {
    await writer.stop();
    await cluster.close();
  }
  return { crash, switchover };
}

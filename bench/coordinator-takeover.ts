import { randomUUID } from "node:crypto";
import { waitFor } from "../core/clock.js";
import { IDEMPOTENCY_KEY_HEADER } from "../core/metadata.js";
import { HaAdminService } from "../gen/autonomy/ha/v1/admin_pb.js";
import { clientFor } from "../rpc/client.js";
import { freePort, startPgCluster, type PgCluster } from "../pgcluster/index.js";
import { AgentProcess, writeReadyAgents } from "../test/support/agents.js";
import { getJson } from "../test/support/processes.js";
import { testCredentials } from "../test/support/pki.js";
import { CoordinatorProcess } from "./support/coordinator-process.js";
import { summarize, type BenchResult } from "./stats.js";

/** How often the bench asks the standbys whether one of them is active now. */
const POLL_MS = 2;
/** A takeover slower than this is a failure of the round, not a sample. */
const GIVE_UP_MS = 15_000;

interface Member {
  readonly id: string;
  readonly port: number;
  process: CoordinatorProcess | undefined;
}

/**
 * Coordinator takeover: three `autonomy coordinator` processes on one lock
 * database (one active, two standbys) and three real agents reporting to all
 * of them. Each round kills the active coordinator with SIGKILL and times,
 * from the signal:
 *
 * - "standby active": a standby's /readyz says `coordinator.role: active`
 *   (polled every 2 ms on each standby);
 * - "admin accepted": the first admin mutation (SetMaintenance paused:false)
 *   accepted through the comma-separated list of all three URLs, as the CLI
 *   sends it: a fresh client per round, so it starts at the first URL and
 *   moves on the way `autonomy ha` does (rpc/failover-transport.ts).
 *
 * The killed coordinator is restarted at the same port and id and the round
 * ends once it is a standby again. One extra round SIGSTOPs the active one
 * instead: nothing closes its socket, so the takeover is bounded by the
 * database ending its idle lock session (idle_session_timeout 2 s).
 */
export async function coordinatorTakeoverBench(rounds: number): Promise<BenchResult[]> {
  const cluster = await startPgCluster({ standbys: 0 });
  const members: Member[] = [];
  const agents: AgentProcess[] = [];
  const toActive: number[] = [];
  const toAccepted: number[] = [];
  const stopped: number[] = [];
  let leaderChanges = 0;
  try {
    for (const i of [1, 2, 3]) members.push({ id: `bench-coord-${i}`, port: await freePort(), process: undefined });
    for (const m of members) await start(cluster, m);
    const urls = members.map((m) => m.process!.url).join(",");
    for (const i of [1, 2, 3]) agents.push(await AgentProcess.start({ nodeId: `takeover-node-${i}`, databaseUrl: cluster.primary.url(), coordinatorUrl: urls }));
    const leaderBefore = await leaderEpoch(agents);

    for (let round = 0; round < rounds; round++) {
      const active = await activeMember(members);
      const started = performance.now();
      active.process!.process.signal("SIGKILL");
      const [standby, accepted] = await Promise.all([untilStandbyActive(members, active), untilAdminAccepted(urls, round)]);
      toActive.push(standby - started);
      toAccepted.push(accepted - started);
      await active.process!.process.waitExit();
      await restart(cluster, active);
    }

    // The hung active coordinator: its socket stays open, only the database's timeout frees the lock.
    const hung = await activeMember(members);
    const started = performance.now();
    hung.process!.process.signal("SIGSTOP");
    try {
      stopped.push((await untilStandbyActive(members, hung)) - started);
    } finally {
      hung.process!.process.signal("SIGCONT");
    }
    await hung.process!.process.kill();
    await restart(cluster, hung);

    // A coordinator takeover is no reason for the agents to change leader.
    leaderChanges = (await leaderEpoch(agents)) === leaderBefore ? 0 : 1;
  } finally {
    await Promise.all(agents.map((a) => a.process.stop()));
    await Promise.all(members.map((m) => m.process?.stop()));
    await cluster.close();
  }

  const settings = {
    rounds,
    coordinators: 3,
    agents: 3,
    pollIntervalMs: POLL_MS,
    coordinatorTimings: "default (lock renewed every 250 ms, lease 1 s, idle_session_timeout 2 s)",
    agentLeaderChanges: leaderChanges,
  };
  const underOneSecond = (s: readonly number[]) => s.length === rounds && summarize(s).max < 1_000;
  return [
    {
      name: "coordinator SIGKILL → standby active (/readyz)",
      target: "under 1 s",
      unit: "ms",
      summary: summarize(toActive),
      samples: toActive,
      settings: { ...settings, method: "SIGKILL of the active coordinator → a standby's /readyz says coordinator.role active" },
      pass: underOneSecond(toActive) && leaderChanges === 0,
    },
    {
      name: "coordinator SIGKILL → admin mutation accepted (URL list)",
      target: "under 1 s",
      unit: "ms",
      summary: summarize(toAccepted),
      samples: toAccepted,
      settings: { ...settings, method: "SIGKILL → SetMaintenance(paused: false) accepted by a client given all three URLs, fresh per round" },
      pass: underOneSecond(toAccepted),
    },
    {
      name: "coordinator SIGSTOP → standby active (/readyz)",
      target: "about 2 s (idle_session_timeout)",
      unit: "ms",
      summary: summarize(stopped),
      samples: stopped,
      settings: { ...settings, rounds: 1, method: "SIGSTOP of the active coordinator → a standby's /readyz says coordinator.role active" },
      pass: stopped.length === 1 && stopped[0]! < 3_000,
    },
  ];
}

async function start(cluster: PgCluster, m: Member): Promise<void> {
  m.process = await CoordinatorProcess.start(cluster.primary.url(), [], { port: m.port, coordinatorId: m.id });
}

/** Brings a killed coordinator back at its port and id, and waits until it has joined as a standby. */
async function restart(cluster: PgCluster, m: Member): Promise<void> {
  await m.process!.stop();
  await start(cluster, m);
  await waitFor(async () => (await role(m)) === "standby", { timeoutMs: 20_000, what: `${m.id} to come back as a standby` });
}

async function role(m: Member): Promise<string | undefined> {
  if (!m.process?.process.running) return undefined;
  const r = await getJson<{ coordinator?: { role?: string } }>(`${m.process.url}/readyz`);
  return r?.body.coordinator?.role;
}

/** The one active coordinator, once the others all say standby. */
async function activeMember(members: readonly Member[]): Promise<Member> {
  return waitFor(
    async () => {
      const roles = await Promise.all(members.map(role));
      const active = roles.flatMap((r, i) => (r === "active" ? [members[i]!] : []));
      return active.length === 1 && roles.every((r) => r === "active" || r === "standby") ? active[0] : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 50, what: "exactly one active coordinator and two standbys" },
  );
}

/** performance.now() when one of the others first answers as active. */
async function untilStandbyActive(members: readonly Member[], gone: Member): Promise<number> {
  const others = members.filter((m) => m !== gone);
  const deadline = performance.now() + GIVE_UP_MS;
  while (performance.now() < deadline) {
    const roles = await Promise.all(others.map(role));
    if (roles.includes("active")) return performance.now();
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  throw new Error(`no standby became active within ${GIVE_UP_MS} ms of stopping ${gone.id}`);
}

/** performance.now() when an admin mutation sent to the whole URL list is first accepted. */
async function untilAdminAccepted(urls: string, round: number): Promise<number> {
  // One client and one idempotency key per round, as one `autonomy ha maintenance` invocation.
  const admin = clientFor(HaAdminService, urls, { timeoutMs: 2_000, credentials: testCredentials() });
  const headers = { [IDEMPOTENCY_KEY_HEADER]: randomUUID() };
  const deadline = performance.now() + GIVE_UP_MS;
  let last: unknown;
  while (performance.now() < deadline) {
    try {
      await admin.setMaintenance({ paused: false, operator: "bench", reason: `coordinator takeover round ${round + 1}` }, { headers });
      return performance.now();
    } catch (err) {
      // The client already went round the list for 5 s; a second search is the operator running it again.
      last = err;
    }
  }
  throw new Error(`no coordinator accepted SetMaintenance within ${GIVE_UP_MS} ms: ${String(last)}`);
}

/** The Write-Ready agent's epoch: the same value before and after means no leader change. */
async function leaderEpoch(agents: readonly AgentProcess[]): Promise<number> {
  const leader = await waitFor(
    async () => {
      const ready = await writeReadyAgents(agents);
      return ready.length === 1 ? ready[0] : undefined;
    },
    { timeoutMs: 30_000, what: "exactly one Write-Ready agent" },
  );
  return (await leader.leader())?.current_epoch ?? -1;
}

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { waitFor } from "../../core/clock.js";
import { fencedTransaction, followLeader, StaleEpochError, whileLeader, type FollowEvent, type LeaderUpdate } from "../../client/index.js";
import { describeRun, runCli } from "../support/cli-run.js";
import { AGENT_LEASE_MS, ClientTestCluster } from "./cluster.js";

/*
 * The client library against a real cluster (PostgreSQL primary + standby, a
 * coordinator, three agents), through every way authority moves: a planned
 * failover, SIGKILL of the leader's agent, the coordinator killed and
 * restarted, the leader's agent SIGSTOPped past its lease, and a split-brain
 * recovered with manual-reconcile. Meanwhile one whileLeader per node records
 * when its callback started, when its signal aborted and when it returned,
 * and one followLeader over three URLs records what it yields.
 */

interface Interval {
  readonly node: string;
  readonly epoch: number;
  readonly start: number;
  abortedAt?: number;
  end?: number;
  /** What a fenced write at the start of the callback said: the epoch must be current when the callback starts. */
  firstWrite?: string;
}

const OPERATOR = ["--operator", "client-test"];

describe("the client library across leadership changes of a real cluster", () => {
  let cluster: ClientTestCluster;
  let pool: pg.Pool;
  const intervals: Interval[] = [];
  const logs: string[] = [];
  const followed: FollowEvent[] = [];
  const stopWorkers = new AbortController();
  const stopFollowing = new AbortController();
  let workers: Promise<void>[] = [];
  let following: Promise<void> | undefined;

  beforeAll(async () => {
    cluster = await ClientTestCluster.start();
    pool = new pg.Pool({ connectionString: cluster.primaryUrl, max: 4 });
    pool.on("error", () => undefined);
    await cluster.sql("CREATE TABLE IF NOT EXISTS client_test_work (id bigserial PRIMARY KEY, epoch bigint NOT NULL, node text NOT NULL)");
    workers = cluster.nodes.map(({ nodeId }) =>
      whileLeader(
        {
          agentUrl: cluster.agentUrl(nodeId),
          signal: stopWorkers.signal,
          leaseMs: AGENT_LEASE_MS,
          name: "test worker",
          log: (line) => logs.push(`${nodeId}: ${line}`),
        },
        async ({ epoch, signal, nodeId: node }) => {
          const iv: Interval = { node, epoch, start: performance.now() };
          intervals.push(iv);
          const aborted = new Promise<void>((resolve) => {
            const onAbort = () => {
              iv.abortedAt = performance.now();
              resolve();
            };
            if (signal.aborted) onAbort();
            else signal.addEventListener("abort", onAbort, { once: true });
          });
          iv.firstWrite = await fencedTransaction(pool, epoch, (c) => c.query("INSERT INTO client_test_work (epoch, node) VALUES ($1, $2)", [epoch, node])).then(
            () => "committed",
            (err: unknown) => (err instanceof StaleEpochError ? `stale: ${err.message}` : `failed: ${String(err)}`),
          );
          await aborted;
          iv.end = performance.now();
        },
      ),
    );
    following = (async () => {
      const urls = [cluster.coordinatorUrl, cluster.agentUrl("cp-node-1"), cluster.agentUrl("cp-node-2")];
      for await (const e of followLeader({ urls, signal: stopFollowing.signal })) followed.push(e);
    })();
  }, 120_000);

  afterAll(async () => {
    stopWorkers.abort();
    stopFollowing.abort();
    await Promise.allSettled([...workers, following]);
    await pool?.end();
    await cluster?.close();
  }, 60_000);

  const open = () => intervals.filter((i) => i.end === undefined);

  /** A callback running for the coordinator's Write-Ready leader above `above`: its node and epoch. */
  async function runningLeader(above: number, timeoutMs = 30_000): Promise<Interval> {
    const l = await cluster.leader(above, timeoutMs);
    return waitFor(() => open().find((i) => i.node === l.holder_id && i.epoch === l.current_epoch), {
      timeoutMs,
      what: `the callback of ${l.holder_id} at epoch ${l.current_epoch} to run`,
    }).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}\nlogs:\n${logs.join("\n")}\n${cluster.evidence()}`);
    });
  }

  let current: Interval;

  it("runs the callback on the leader only", async () => {
    current = await runningLeader(0, 60_000);
    expect(open()).toEqual([current]);
    expect(logs).toContain(`${current.node}: test worker started (${current.node} leads at epoch ${current.epoch})`);
  });

  it("a planned failover stops the old leader's callback before the successor's starts", async () => {
    const r = await runCli(["ha", "failover", "trigger", "--orchestrator-url", cluster.coordinatorUrl, ...OPERATOR, "--reason", "client test: planned failover"]);
    expect(r.code, describeRun(r)).toBe(0);
    const next = await runningLeader(current.epoch);
    expect(next.node).not.toBe(current.node);
    expect(current.end).toBeDefined();
    current = next;
  });

  it("SIGKILL of the leader's agent stops its callback; the successor's starts after", async () => {
    const killed = current.node;
    await cluster.agent(killed).kill();
    current = await runningLeader(current.epoch);
    expect(current.node).not.toBe(killed);
    await cluster.startAgent(killed);
  });

  it("with the coordinator killed, a crashed leader is still replaced, and the stream moves to the next URL", async () => {
    await cluster.coordinator.kill();
    const killed = current.node;
    const before = current;
    await cluster.agent(killed).kill();
    // No coordinator to ask: the callbacks are what show the new leader.
    current = await waitFor(() => open().find((i) => i.node !== killed && i.epoch > before.epoch), { timeoutMs: 30_000, what: "a callback on a new leader" });
    await cluster.startCoordinator();
    await cluster.startAgent(killed);
    await runningLeader(before.epoch);
    expect(followed.some((e) => e.type === "disconnected" && e.url === cluster.coordinatorUrl)).toBe(true);
  });

  it("SIGSTOP of the leader's agent past its lease: its callback is aborted before anyone else's starts", async () => {
    const stopped = current.node;
    cluster.agent(stopped).signal("SIGSTOP");
    try {
      const next = await runningLeader(current.epoch, 40_000);
      expect(next.node).not.toBe(stopped);
      expect(current.abortedAt).toBeDefined();
      current = next;
    } finally {
      cluster.agent(stopped).signal("SIGCONT");
    }
    // Back from the pause, the old leader fenced itself: its callback does not come back.
    await waitFor(async () => (await fetch(`${cluster.agentUrl(stopped)}/v1/health/write-ready`).then((r) => r.json() as Promise<{ ready: boolean }>).catch(() => undefined))?.ready === false, {
      timeoutMs: 15_000,
      what: `${stopped} to report itself not Write-Ready after SIGCONT`,
    });
    expect(open().filter((i) => i.node === stopped)).toEqual([]);
  });

  it("manual-reconcile stops every callback; the failover that follows starts one on the chosen node", async () => {
    const epoch = current.epoch;
    await cluster.sql("UPDATE leader_epochs SET resigned_at = NULL, end_reason = NULL WHERE cluster_id = 'default' AND epoch = $1", [epoch - 1]);
    await waitFor(
      async () => {
        const r = await runCli(["ha", "split-brain", "detect", "--orchestrator-url", cluster.coordinatorUrl, "--output", "json"]);
        return r.code === 0 && (JSON.parse(r.stdout) as { split_brain_detected: boolean }).split_brain_detected;
      },
      { timeoutMs: 20_000, intervalMs: 250, what: "the coordinator to detect the unclosed epochs" },
    );
    const recover = await runCli([
      "ha", "split-brain", "recover", "--orchestrator-url", cluster.coordinatorUrl, ...OPERATOR, "--strategy", "manual-reconcile", "--reason", "client test: inspect first",
    ]);
    expect(recover.code, describeRun(recover)).toBe(0);
    await waitFor(() => open().length === 0, { timeoutMs: 15_000, what: "every callback to stop after manual-reconcile" });
    // The node that led before: the coordinator re-sends its reconcile hold to
    // a node it held directly when that node reports during the failover's
    // campaign, so naming one of those can leave the failover unanswered.
    const target = current.node;
    // As runbook 002 says: trigger the failover from the node chosen to lead.
    const failover = await runCli(["ha", "failover", "trigger", "--orchestrator-url", cluster.agentUrl(target), ...OPERATOR, "--reason", "client test: post-reconcile"]);
    expect(failover.code, `${describeRun(failover)}\n${cluster.evidence()}`).toBe(0);
    current = await runningLeader(epoch);
    expect(current.node).toBe(target);
  });

  it("no two callbacks ever overlapped, and each one's signal aborted before the next one started", async () => {
    await waitFor(() => intervals.every((i) => i.firstWrite !== undefined), { timeoutMs: 10_000, what: "every callback's first fenced write to finish" });
    const byStart = [...intervals].sort((a, b) => a.start - b.start);
    const report = byStart.map((i) => `${i.node} epoch ${i.epoch}: ${i.start.toFixed(0)} aborted ${i.abortedAt?.toFixed(0)} ended ${i.end?.toFixed(0)} (${i.firstWrite})`).join("\n");
    expect(byStart.length, report).toBeGreaterThanOrEqual(6);
    for (let k = 1; k < byStart.length; k++) {
      const [before, after] = [byStart[k - 1]!, byStart[k]!];
      expect(before.abortedAt, report).toBeDefined();
      expect(before.abortedAt!, report).toBeLessThan(after.start);
      expect(before.end!, report).toBeLessThanOrEqual(after.start);
      expect(after.epoch, report).toBeGreaterThan(before.epoch);
    }
    // Each callback started while its epoch was the database's current one.
    expect(byStart.filter((i) => i.firstWrite !== "committed"), report).toEqual([]);
    for (const i of byStart.slice(0, -1)) expect(logs, report).toContain(`${i.node}: test worker started (${i.node} leads at epoch ${i.epoch})`);
    expect(logs.some((l) => /: test worker stopped \(cp-node-\d, epoch \d+\): /.test(l))).toBe(true);
  });

  it("followLeader over three URLs yielded the database's epochs in order, each once, through every restart", async () => {
    const last = (await cluster.epochs()).at(-1)!;
    const updates = () => followed.filter((e): e is LeaderUpdate => e.type === "leader" && e.leader.holderId !== "");
    await waitFor(() => updates().at(-1)?.leader.epoch === last.epoch, { timeoutMs: 20_000, what: `followLeader to reach epoch ${last.epoch}` });
    const seen: { epoch: number; holder: string }[] = [];
    for (const u of updates()) if (seen.at(-1)?.epoch !== u.leader.epoch) seen.push({ epoch: u.leader.epoch, holder: u.leader.holderId });
    const db = (await cluster.epochs()).filter((e) => e.epoch >= seen[0]!.epoch).map((e) => ({ epoch: e.epoch, holder: e.holder_id }));
    const story = followed.map((e) => (e.type === "leader" ? `${e.cause} ${e.leader.holderId}@${e.leader.epoch} ${e.leader.writeReady} (${e.url})` : `${e.type} ${e.url}`)).join("\n");
    expect(seen, story).toEqual(db);
    // No update repeats the one before it.
    const leaders = followed.filter((e): e is LeaderUpdate => e.type === "leader").map((e) => `${e.leader.holderId}@${e.leader.epoch}/${e.leader.writeReady}`);
    expect(leaders.filter((l, i) => i > 0 && l === leaders[i - 1]), story).toEqual([]);
  });

  describe("fencedTransaction", () => {
    it("with a stale epoch rejects with StaleEpochError carrying the current epoch, and leaves no row", async () => {
      const { epoch } = (await cluster.epochs()).at(-1)!;
      const err = await fencedTransaction(pool, epoch - 1, (c) => c.query("INSERT INTO client_test_work (epoch, node) VALUES ($1, 'stale-writer')", [epoch - 1])).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StaleEpochError);
      expect(err).toMatchObject({ name: "StaleEpochError", code: "stale_epoch", retryable: false, epoch: epoch - 1, currentEpoch: epoch });
      expect((await cluster.sql("SELECT 1 FROM client_test_work WHERE node = 'stale-writer'")).rowCount).toBe(0);
    });

    it("a slow transaction with the current epoch holds the next epoch back: it never commits after the next epoch began", async () => {
      const leader = await cluster.leader();
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      const slow = fencedTransaction(pool, leader.current_epoch, async (c) => {
        await c.query("INSERT INTO client_test_work (epoch, node) VALUES ($1, 'slow-writer')", [leader.current_epoch]);
        await released;
        // The last moment before COMMIT, in database time.
        return (await c.query<{ now: Date }>("SELECT clock_timestamp() AS now")).rows[0]!.now;
      }).then(
        (committedBy) => ({ committedBy }),
        (err: unknown) => ({ err }),
      );
      const failover = runCli(["ha", "failover", "trigger", "--orchestrator-url", cluster.coordinatorUrl, ...OPERATOR, "--reason", "client test: failover under a slow fenced transaction"]);
      // The epoch change queues behind the open fenced transaction on the epoch gate.
      await waitFor(async () => Number((await cluster.sql<{ n: string }>("SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")).rows[0]!.n) > 0, {
        timeoutMs: 15_000,
        what: "the epoch change to wait on the epoch gate",
      });
      release();
      const outcome = await slow;
      const r = await failover;
      expect(r.code, describeRun(r)).toBe(0);
      const next = (await cluster.epochs()).find((e) => e.epoch === leader.current_epoch + 1);
      expect(next).toBeDefined();
      const rows = (await cluster.sql("SELECT 1 FROM client_test_work WHERE node = 'slow-writer'")).rowCount;
      if ("committedBy" in outcome) {
        expect(rows).toBe(1);
        expect(outcome.committedBy.getTime()).toBeLessThanOrEqual(next!.acquired_at.getTime());
      } else {
        expect(outcome.err).toBeInstanceOf(Error);
        expect(rows).toBe(0);
      }
      // And now the old epoch is refused.
      await expect(fencedTransaction(pool, leader.current_epoch, (c) => c.query("SELECT 1"))).rejects.toBeInstanceOf(StaleEpochError);
    });

    it("says what is wrong with its arguments", async () => {
      await expect(fencedTransaction(pool, 0, async () => undefined)).rejects.toThrow(/epoch must be a positive integer .* got 0/);
      expect(() => followLeader({ urls: [], signal: new AbortController().signal })).toThrow(/urls must list at least one/);
      expect(() => followLeader({ urls: ["ftp://x:1"], signal: new AbortController().signal })).toThrow(/must start with http:\/\/ or https:\/\//);
      await expect(whileLeader({ agentUrl: cluster.agentUrl("cp-node-1"), signal: new AbortController().signal, authorityMs: 100 }, async () => undefined)).rejects.toThrow(
        /authorityMs \(100ms\) must be at least twice confirmIntervalMs \(250ms\)/,
      );
    });
  });
});

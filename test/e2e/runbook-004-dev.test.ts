import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { waitFor } from "../../core/clock.js";
import { describeRun, expectOk, runCli } from "../support/cli-run.js";
import { DevRun } from "../support/dev-cluster.js";
import { expectShellOk, runShell, shellJson } from "../support/shell.js";

/*
 * Seed 004 (region failover) against `autonomy dev`, with our commands for
 * its steps: §2 `autonomy dev promote --crash-primary` (the primary is lost,
 * the standby promoted), §3 `autonomy db stamp`, §5 `curl …/readyz | jq
 * .cluster`; then the watch-out: the old primary comes back
 * (`autonomy dev zombie`) and is contained, its assert_epoch refusing every
 * epoch, while the cluster keeps one writer on the promoted server.
 */
describe("seed 004: a region failover on the local cluster", () => {
  let dev: DevRun;

  beforeAll(async () => {
    dev = await DevRun.start();
    await dev.settled();
  }, 150_000);
  afterAll(() => dev?.stopAndExpectClean(), 90_000);

  const env = () => ({ AUTONOMY_ORCHESTRATOR_URL: dev.coordinatorUrl, AUTONOMY_OPERATOR: "alice", AUTONOMY_DATABASE_URL: dev.d.database_url });

  it("promote, stamp, verify the RTO check, and contain the old primary when it returns", async () => {
    const before = await dev.writeReadyLeader();

    // §2: the primary is lost and the standby promoted.
    const promote = await runCli(["dev", "promote", "--crash-primary", "--data-dir", dev.dataDir]);
    expectOk(promote);
    expect(promote.stdout).toMatch(/promoted the standby/);
    const first = await dev.writeReadyLeader(30_000, before.current_epoch);

    // §3: stamp the promotion epoch, as the runbook's step with our command.
    const stamp = await runShell('autonomy db stamp --database-url "$AUTONOMY_DATABASE_URL" --region eu-west-1 --operator "$AUTONOMY_OPERATOR" --reason "region failover" --output json', env());
    expectShellOk(stamp);
    const stamped = shellJson<{ stamped_epoch: number; timeline: number; region: string }>(stamp);
    expect(stamped.stamped_epoch).toBeGreaterThan(first.current_epoch);
    expect(stamped).toMatchObject({ timeline: 2, region: "eu-west-1" });
    // The stamp ended the term it found: the next one opens above it.
    const after = await dev.writeReadyLeader(30_000, stamped.stamped_epoch);

    // The demo control plane follows: its fenced writes land on the promoted server, in the new term.
    await waitFor(
      async () => {
        const r = await dev.sql<{ n: number }>(dev.standbyUrl, "SELECT count(*)::int AS n FROM promotion_decisions WHERE epoch >= $1", [after.current_epoch]);
        return r.rows[0]!.n > 0;
      },
      { timeoutMs: 30_000, what: "the demo workload's fenced writes on the promoted server" },
    );

    // §5: the RTO check on /readyz.
    const ready = await runShell(`curl -s ${dev.coordinatorUrl}/readyz | jq .cluster`, env());
    expectShellOk(ready);
    const cluster = shellJson<{ writes_usable: boolean; writer: { node_id: string; timeline: number; writer_region: string }; highest_epoch: number }>(ready);
    expect(cluster).toMatchObject({ writes_usable: true, writer: { node_id: after.holder_id, timeline: 2, writer_region: "eu-west-1" } });
    expect(cluster.highest_epoch).toBeGreaterThanOrEqual(after.current_epoch);
    const promoted = await waitFor(() => dev.auditEvents().find((e) => e.type === "ha.database.promoted"), { timeoutMs: 15_000, what: "ha.database.promoted" });
    expect(promoted.evidence).toMatchObject({ timeline: 2, rto_ms: expect.any(Number) });

    // The watch-out: the old primary returns, writable on its old timeline.
    const zombie = await runCli(["dev", "zombie", "--data-dir", dev.dataDir]);
    expect(zombie.code, describeRun(zombie)).toBe(0);
    await waitFor(() => dev.auditEvents().some((e) => e.type === "ha.database.contained" && e.evidence?.fence_written === true), {
      timeoutMs: 20_000,
      what: "the returned old primary to be contained",
    });
    const old = new pg.Client({ connectionString: dev.primaryUrl });
    await old.connect();
    try {
      for (const e of [before.current_epoch, after.current_epoch]) {
        const err = await old.query("SELECT assert_epoch($1)", [e]).then(() => undefined, (x: unknown) => x as { code: string; message: string });
        expect(err?.code).toBe("AH001");
        expect(err?.message).toMatch(/superseded by timeline 2/);
      }
      expect((await old.query("SELECT count(*)::int AS n FROM leader_epochs WHERE resigned_at IS NULL")).rows[0].n).toBe(0);
    } finally {
      await old.end();
    }
    // One writer throughout: the leader on the promoted server is unmoved.
    const still = await dev.writeReadyLeader();
    expect(still.current_epoch).toBeGreaterThanOrEqual(after.current_epoch);
  });
});

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../core/clock.js";
import { freePort } from "../../pgcluster/index.js";
import { describeRun, expectOk, expectOneLineError, ISO_SECONDS, labelledValues, labelsOf, runCli } from "../support/cli-run.js";
import { DevRun } from "../support/dev-cluster.js";
import { getJson } from "../support/processes.js";

/*
 * Runbook 000 (manual failover), word for word, against a real `autonomy dev`
 * cluster: PostgreSQL primary + streaming standby, coordinator, three agents.
 * Every command is the real CLI in a child process, pointed at the current
 * leader's node as the runbook says (and once at the coordinator).
 *
 * The lag thresholds are lowered through the agents' and coordinator's own
 * environment variables (AUTONOMY_LAG_WARN / AUTONOMY_LAG_CRITICAL, the
 * runbook's ReplicationLagWarn / ReplicationLagMax) so the "lag critical"
 * refusal needs seconds of paused replay, not more than ten.
 */

const OPERATOR = "alice";
const iso = new RegExp(`^${ISO_SECONDS}$`);

/** Seconds-precision bounds for a time the CLI printed. */
function expectWithin(printed: string, from: Date, to: Date): void {
  const t = Date.parse(printed);
  expect(t).toBeGreaterThanOrEqual(Math.floor(from.getTime() / 1000) * 1000);
  expect(t).toBeLessThanOrEqual(to.getTime());
}

// The whole walk-through runs twice: as the runbook is written, and with
// `autonomy dev --secure` (mTLS on every port, the CLI with the operator's
// admin certificate): everything that works in the clear works with TLS on.
describe.each([
  { mode: "plaintext", secure: false },
  { mode: "mTLS everywhere (autonomy dev --secure)", secure: true },
])("runbook 000: manual failover against autonomy dev, $mode", ({ secure }) => {
  let dev: DevRun;

  beforeAll(async () => {
    dev = await DevRun.start({ env: { AUTONOMY_LAG_WARN: "2s", AUTONOMY_LAG_CRITICAL: "4s" }, secure });
    await dev.settled();
  }, 150_000);

  afterAll(() => dev?.stopAndExpectClean(), 90_000);

  /** The leader's node: the runbook's AUTONOMY_ORCHESTRATOR_URL. */
  async function currentLeader() {
    const l = await dev.writeReadyLeader();
    return { id: l.holder_id, epoch: l.current_epoch, url: dev.agent(l.holder_id).url };
  }

  async function maxEpochRow(): Promise<{ epoch: number; holder_id: string; open: boolean }> {
    const r = await dev.sql<{ epoch: string; holder_id: string; open: boolean }>(
      dev.primaryUrl,
      "SELECT epoch, holder_id, resigned_at IS NULL AS open FROM leader_epochs ORDER BY epoch DESC LIMIT 1",
    );
    const row = r.rows[0]!;
    return { epoch: Number(row.epoch), holder_id: row.holder_id, open: row.open };
  }

  let first: { previous: string; previousEpoch: number; successor: string } | undefined;

  it("§1 pre-failover health check: the leader's node prints the runbook's status block", async () => {
    const leader = await currentLeader();
    await waitFor(async () => (await getJson<{ lag_status: string }>(`${leader.url}/v1/health/replication`))?.body.lag_status === "ok", {
      timeoutMs: 20_000,
      what: "replication lag ok on the leader",
    });
    const env = { AUTONOMY_ORCHESTRATOR_URL: leader.url };
    const r = await runCli(["ha", "status", "--orchestrator-url", env.AUTONOMY_ORCHESTRATOR_URL], env);
    expectOk(r);
    // Seed 000 §1, line for line (the dev standby is asynchronous: Sync Replicas 0).
    expect(r.lines.slice(0, 19), describeRun(r)).toEqual([
      "Role:               leader",
      "Session lock held:  true",
      "Write-Ready:        true",
      expect.stringMatching(new RegExp(`^Queried At:         ${ISO_SECONDS}$`)),
      "",
      "Leader",
      `  Holder ID:        ${leader.id}`,
      `  Epoch:            ${leader.epoch}`,
      expect.stringMatching(new RegExp(`^  Acquired At:      ${ISO_SECONDS}$`)),
      "",
      "Quorum",
      "  Write-Ready:      true",
      "  Sync Replicas:    0",
      "",
      "Replication",
      "  Lag Status:       ok",
      expect.stringMatching(/^ {2}Max Write Lag: {4}\d+(\.\d+)?(ms|s)$/),
      expect.stringMatching(/^ {2}Max Replay Lag: {3}\d+(\.\d+)?(ms|s)$/),
      "  Replicas:         1",
    ]);
    // `watch … | head -6` in §3 relies on the first block coming first.
    expect(labelsOf(r.lines.slice(0, 6))).toEqual(["Role", "Session lock held", "Write-Ready", "Queried At"]);
  });

  it("§1 the same check through the coordinator, in text and in JSON", async () => {
    const leader = await currentLeader();
    const [text, json] = await Promise.all([
      runCli(["ha", "status", "--orchestrator-url", dev.coordinatorUrl]),
      runCli(["ha", "status", "--orchestrator-url", dev.coordinatorUrl, "--output", "json"]),
    ]);
    expectOk(text);
    expect(labelsOf(text.lines).slice(0, 4)).toEqual(["Role", "Session lock held", "Write-Ready", "Queried At"]);
    const v = labelledValues(text.lines);
    expect(v.get("Role")).toBe("leader");
    expect(v.get("Session lock held")).toBe("true");
    expect(v.get("Holder ID")).toBe(leader.id);
    expect(v.get("Epoch")).toBe(String(leader.epoch));
    expectOk(json);
    const s = JSON.parse(json.stdout) as Record<string, any>;
    expect(s).toMatchObject({
      role: "leader",
      session_lock_held: true,
      write_ready: true,
      leader: { holder_id: leader.id, epoch: leader.epoch },
      quorum: { write_ready: true, sync_replicas: 0 },
      replication: { replicas: 1 },
    });
    expect(s.queried_at).toMatch(iso);
    expect(s.replication.lag_status).toMatch(/^(ok|warn)$/);
  });

  it("§2–§4 failover trigger at the leader's URL: a new holder at epoch+1, Write-Ready; the old node is not", async () => {
    const leader = await currentLeader();
    const env = { AUTONOMY_ORCHESTRATOR_URL: leader.url, AUTONOMY_OPERATOR: OPERATOR };
    const reason = `planned maintenance: OS patching on ${leader.id}`;
    const before = new Date();
    const r = await runCli(
      ["ha", "failover", "trigger", "--orchestrator-url", env.AUTONOMY_ORCHESTRATOR_URL, "--operator", env.AUTONOMY_OPERATOR, "--reason", reason],
      env,
    );
    const after = new Date();
    expectOk(r);
    expect(r.lines[0], describeRun(r)).toBe("Failover triggered");
    // The seed's four lines, in its order and columns (we add New Holder / New Epoch before Message).
    const seedLabels = ["Previous Holder", "Previous Epoch", "Resigned At", "Message"];
    expect(labelsOf(r.lines).filter((l) => seedLabels.includes(l))).toEqual(seedLabels);
    expect(r.lines).toContain(`  Previous Holder: ${leader.id}`);
    expect(r.lines).toContain(`  Previous Epoch:  ${leader.epoch}`);
    const resigned = r.lines.find((l) => l.startsWith("  Resigned At:     "));
    expect(resigned, describeRun(r)).toMatch(new RegExp(`^ {2}Resigned At: {5}${ISO_SECONDS}$`));
    expectWithin(resigned!.slice("  Resigned At:     ".length), before, after);
    const message = r.lines.find((l) => l.startsWith("  Message:         "))?.slice("  Message:         ".length);
    const m = /^leader resigned gracefully; successor (cp-node-\d) acquired epoch (\d+)$/.exec(message ?? "");
    expect(m, describeRun(r)).not.toBeNull();
    const successor = m![1]!;
    expect(successor).not.toBe(leader.id);
    expect(Number(m![2])).toBe(leader.epoch + 1);
    expect(labelledValues(r.lines).get("New Holder")).toBe(successor);
    expect(labelledValues(r.lines).get("New Epoch")).toBe(String(leader.epoch + 1));
    first = { previous: leader.id, previousEpoch: leader.epoch, successor };

    // §3: the new leader's node reports the lock, epoch+1 exactly, and Write-Ready…
    const newUrl = dev.agent(successor).url;
    const status = await runCli(["ha", "status", "--orchestrator-url", newUrl]);
    expectOk(status);
    expect(status.lines.slice(0, 3), describeRun(status)).toEqual(["Role:               leader", "Session lock held:  true", "Write-Ready:        true"]);
    expect(labelledValues(status.lines).get("Holder ID")).toBe(successor);
    expect(labelledValues(status.lines).get("Epoch")).toBe(String(leader.epoch + 1));
    // …and so do the runbook's curl paths, on the node and on the coordinator.
    const health = await getJson<Record<string, unknown>>(`${newUrl}/v1/health/leader`);
    expect(health?.status).toBe(200);
    expect(health?.body).toMatchObject({ holder_id: successor, current_epoch: leader.epoch + 1, session_lock_held: true });
    expect(await dev.coordinatorLeader()).toMatchObject({ holder_id: successor, current_epoch: leader.epoch + 1, session_lock_held: true, write_ready: true });
    // The epoch rose by exactly one: no gap, the old term closed as resigned.
    const epochs = await dev.sql<{ epoch: string; holder_id: string; resigned: boolean; end_reason: string | null }>(
      dev.primaryUrl,
      "SELECT epoch, holder_id, resigned_at IS NOT NULL AS resigned, end_reason FROM leader_epochs ORDER BY epoch DESC LIMIT 2",
    );
    expect(epochs.rows.map((e) => ({ ...e, epoch: Number(e.epoch) }))).toEqual([
      { epoch: leader.epoch + 1, holder_id: successor, resigned: false, end_reason: null },
      { epoch: leader.epoch, holder_id: leader.id, resigned: true, end_reason: "resigned" },
    ]);

    // The runbook's watch loop keeps the old URL: the old node now says it is not the leader.
    const old = await runCli(["ha", "status", "--orchestrator-url", env.AUTONOMY_ORCHESTRATOR_URL], env);
    expectOk(old);
    expect(old.lines.slice(0, 3), describeRun(old)).toEqual(["Role:               follower", "Session lock held:  false", "Write-Ready:        false"]);

    // §4: the old leader released authority.
    // Literally: `curl -sf .../v1/health/write-ready | jq .` prints the body (200), `ready` first.
    const wr = await getJson<{ ready: boolean }>(`${leader.url}/v1/health/write-ready`);
    expect(wr?.status).toBe(200);
    expect(Object.keys(wr!.body)[0]).toBe("ready");
    expect(wr!.body).toMatchObject({ ready: false, node_id: leader.id, role: "follower" });
    // The status-code form for load balancers: the old leader is no primary now, the new one is.
    expect((await getJson(`${leader.url}/v1/health/primary`))?.status).toBe(503);
    expect((await getJson(`${dev.agent(successor).url}/v1/health/primary`))?.status).toBe(200);
    expect((await getJson(`${leader.url}/v1/health/replica`))?.status).toBe(200);
  });

  let second: { previous: string; epoch: number; successor: string } | undefined;

  it("§2 with --output json, through the coordinator: exactly the runbook's field names first", async () => {
    expect(first, "the first failover must have run").toBeDefined();
    const leader = await currentLeader();
    expect(leader.id).toBe(first!.successor);
    const r = await runCli([
      "ha", "failover", "trigger",
      "--orchestrator-url", dev.coordinatorUrl,
      "--operator", OPERATOR,
      "--reason", "planned maintenance: second hop",
      "--output", "json",
    ]);
    expectOk(r);
    const j = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(Object.keys(j).slice(0, 5)).toEqual(["success", "previous_holder", "previous_epoch", "resigned_at", "message"]);
    expect(j.success).toBe(true);
    expect(j.previous_holder).toBe(leader.id);
    expect(j.previous_epoch).toBe(leader.epoch);
    expect(j.resigned_at).toMatch(iso);
    const m = /^leader resigned gracefully; successor (cp-node-\d) acquired epoch (\d+)$/.exec(String(j.message));
    expect(m, r.stdout).not.toBeNull();
    expect(Number(m![2])).toBe(leader.epoch + 1);
    expect(m![1]).not.toBe(leader.id);
    expect(await dev.coordinatorLeader()).toMatchObject({ holder_id: m![1], current_epoch: leader.epoch + 1, write_ready: true });
    second = { previous: leader.id, epoch: leader.epoch + 1, successor: m![1]! };
  });

  it("§5 audit query shows ha.failover.completed with operator and reason (text and JSON)", async () => {
    expect(first && second, "both failovers must have run").toBeTruthy();
    const dir = dev.d.audit_dir;
    const text = await runCli(["audit", "query", "--audit-dir", dir, "--category", "ha", "--limit", "10"]);
    expectOk(text);
    expect(text.lines[0]).toMatch(/^TIME\s+TYPE\s+OPERATOR\s+NODE\s+EPOCH\s+DETAILS$/);
    const rows = text.lines.filter((l) => /\sha\.failover\.completed\s/.test(l));
    expect(rows, text.stdout).toHaveLength(2);
    expect(rows[0]).toMatch(
      new RegExp(
        `^${ISO_SECONDS}\\s+ha\\.failover\\.completed\\s+${OPERATOR}\\s+${first!.successor}\\s+${first!.previousEpoch + 1}\\s+` +
          `leader resigned gracefully; successor ${first!.successor} acquired epoch ${first!.previousEpoch + 1} \\(reason: planned maintenance: OS patching on ${first!.previous}\\)$`,
      ),
    );
    expect(rows[1]).toMatch(new RegExp(`\\s${second!.successor}\\s+${second!.epoch}\\s+.*\\(reason: planned maintenance: second hop\\)$`));

    const json = await runCli(["audit", "query", "--audit-dir", dir, "--category", "ha", "--limit", "10", "--output", "json"]);
    expectOk(json);
    const events = (JSON.parse(json.stdout) as Record<string, unknown>[]).filter((e) => e.type === "ha.failover.completed");
    expect(events).toMatchObject([
      { category: "ha", operator: OPERATOR, reason: `planned maintenance: OS patching on ${first!.previous}`, node_id: first!.successor, epoch: first!.previousEpoch + 1 },
      { category: "ha", operator: OPERATOR, reason: "planned maintenance: second hop", node_id: second!.successor, epoch: second!.epoch },
    ]);

    // The same events through any node (QueryAudit is forwarded to the coordinator).
    const viaNode = await runCli([
      "audit", "query", "--orchestrator-url", dev.agent(second!.successor).url, "--category", "ha", "--type", "ha.failover.completed", "--output", "json",
    ]);
    expectOk(viaNode);
    expect((JSON.parse(viaNode.stdout) as { epoch: number }[]).map((e) => e.epoch)).toEqual([first!.previousEpoch + 1, second!.epoch]);

    // `ha history` credits each term to the failover that opened it and the one that ended it.
    const history = await runCli(["ha", "history", "--orchestrator-url", dev.coordinatorUrl, "--limit", "3", "--output", "json"]);
    expectOk(history);
    const terms = JSON.parse(history.stdout) as Record<string, unknown>[];
    const firstReason = `planned maintenance: OS patching on ${first!.previous}`;
    expect(terms[0]).toMatchObject({ epoch: second!.epoch, opened_by: "ha.failover.completed", operator: OPERATOR, reason: "planned maintenance: second hop", ended_by: null });
    expect(terms[1]).toMatchObject({
      epoch: first!.previousEpoch + 1, opened_by: "ha.failover.completed", reason: firstReason,
      ended_by: "ha.failover.completed", end_operator: OPERATOR, end_action_reason: "planned maintenance: second hop",
    });
    expect(terms[2]).toMatchObject({ epoch: first!.previousEpoch, ended_by: "ha.failover.completed", end_action_reason: firstReason });
    const table = await runCli(["ha", "history", "--orchestrator-url", dev.coordinatorUrl, "--limit", "3"]);
    expectOk(table);
    expect(table.lines).toContain(`    opened by failover (${OPERATOR}): planned maintenance: second hop`);
    expect(table.lines).toContain(`    ended by failover (${OPERATOR}): ${firstReason}`);
  });

  describe("refusals: exit code, one line on stderr, nothing changed", () => {
    it("a failover sent to a node that is not the leader → 3, naming the leader", async () => {
      const leader = await currentLeader();
      const follower = dev.d.agents.find((a) => a.node_id !== leader.id)!;
      const before = await maxEpochRow();
      const r = await runCli([
        "ha", "failover", "trigger", "--orchestrator-url", follower.url, "--operator", OPERATOR, "--reason", "planned maintenance",
      ]);
      expectOneLineError(r, 3, new RegExp(`^autonomy ha failover trigger: (refused: )?precondition not met: not the leader; leader is ${leader.id}$`));
      expect(await dev.coordinatorLeader()).toMatchObject({ holder_id: leader.id, current_epoch: leader.epoch, write_ready: true });
      expect(await maxEpochRow()).toEqual(before);
    });

    it("a failover without --operator or --reason → 2, and nothing is sent", async () => {
      const leader = await currentLeader();
      const before = await maxEpochRow();
      const auditBefore = dev.auditEvents().length;
      const url = ["--orchestrator-url", leader.url];
      const [noOperator, noReason, neither, envOnly] = await Promise.all([
        runCli(["ha", "failover", "trigger", ...url, "--reason", "planned maintenance"]),
        runCli(["ha", "failover", "trigger", ...url, "--operator", OPERATOR]),
        runCli(["ha", "failover", "trigger", ...url]),
        // AUTONOMY_OPERATOR fills --operator, never --reason.
        runCli(["ha", "failover", "trigger", ...url], { AUTONOMY_OPERATOR: OPERATOR }),
      ]);
      expectOneLineError(noOperator, 2, /^autonomy ha failover trigger: .*--operator.*AUTONOMY_OPERATOR/);
      expectOneLineError(noReason, 2, /^autonomy ha failover trigger: .*--reason/);
      expectOneLineError(neither, 2, /^autonomy ha failover trigger: .*--operator.*--reason/);
      expectOneLineError(envOnly, 2, /^autonomy ha failover trigger: .*--reason/);
      expect(envOnly.stderr).not.toMatch(/--operator/);
      expect(await dev.coordinatorLeader()).toMatchObject({ holder_id: leader.id, current_epoch: leader.epoch });
      expect(await maxEpochRow()).toEqual(before);
      expect(dev.auditEvents().slice(auditBefore).filter((e) => e.type.startsWith("ha.failover"))).toEqual([]);
    });

    it("an unreachable orchestrator URL → 1, saying which URL and which setting to check", async () => {
      const port = await freePort(); // closed again: nothing listens there
      const url = `${secure ? "https" : "http"}://127.0.0.1:${port}`;
      const [status, trigger] = await Promise.all([
        runCli(["ha", "status", "--orchestrator-url", url]),
        // The runbook's way: the URL from the environment.
        runCli(["ha", "failover", "trigger", "--operator", OPERATOR, "--reason", "planned maintenance"], { AUTONOMY_ORCHESTRATOR_URL: url }),
      ]);
      const esc = url.replace(/[.]/g, "\\.");
      expectOneLineError(status, 1, new RegExp(`^autonomy ha status: cannot reach the orchestrator at ${esc}: .*ECONNREFUSED.*; check --orchestrator-url / AUTONOMY_ORCHESTRATOR_URL$`));
      expectOneLineError(
        trigger,
        1,
        new RegExp(`^autonomy ha failover trigger: cannot reach the orchestrator at ${esc}: .*ECONNREFUSED.*; check --orchestrator-url / AUTONOMY_ORCHESTRATOR_URL$`),
      );
    });

    it("replication lag critical (standby replay paused) → 3; --force fails over anyway", async () => {
      const leader = await currentLeader();
      await dev.sql(dev.primaryUrl, "CREATE TABLE IF NOT EXISTS e2e_lag (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())");
      await dev.sql(dev.standbyUrl, "SELECT pg_wal_replay_pause()");
      let writing = true;
      const writer = (async () => {
        while (writing) {
          await dev.sql(dev.primaryUrl, "INSERT INTO e2e_lag DEFAULT VALUES").catch(() => undefined);
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
      try {
        // The leader measures pg_stat_replication; the coordinator acts on its report.
        await waitFor(
          async () => (await getJson<{ lag_status: string }>(`${dev.coordinatorUrl}/v1/health/replication`))?.body.lag_status === "critical",
          { timeoutMs: 30_000, intervalMs: 100, what: "the coordinator to see replication lag critical" },
        );
        const before = await maxEpochRow();
        const refused = await runCli(["ha", "failover", "trigger", "--orchestrator-url", leader.url, "--operator", OPERATOR, "--reason", "planned maintenance"]);
        expectOneLineError(refused, 3, /^autonomy ha failover trigger: (refused: )?precondition not met: replication lag critical; /);
        expect(refused.stderr).toMatch(/--force/);
        expect(await maxEpochRow()).toEqual(before);
        expect(await dev.coordinatorLeader()).toMatchObject({ holder_id: leader.id, current_epoch: leader.epoch });

        const forced = await runCli([
          "ha", "failover", "trigger", "--orchestrator-url", leader.url, "--operator", OPERATOR, "--reason", "emergency: leave the node despite lag", "--force",
        ]);
        expectOk(forced);
        expect(forced.lines[0]).toBe("Failover triggered");
        expect(forced.lines).toContain(`  Previous Holder: ${leader.id}`);
        expect(forced.lines).toContain(`  Previous Epoch:  ${leader.epoch}`);
        const after = await dev.writeReadyLeader(10_000, leader.epoch);
        expect(after.holder_id).not.toBe(leader.id);
        expect(after.current_epoch).toBe(leader.epoch + 1);
        const audit = dev.auditEvents().filter((e) => e.type === "ha.failover.completed").at(-1);
        expect(audit).toMatchObject({ operator: OPERATOR, reason: "emergency: leave the node despite lag", epoch: leader.epoch + 1, evidence: { forced: true } });
      } finally {
        writing = false;
        await writer;
        await dev.sql(dev.standbyUrl, "SELECT pg_wal_replay_resume()");
      }
      await waitFor(
        async () => (await getJson<{ lag_status: string }>(`${dev.coordinatorUrl}/v1/health/replication`))?.body.lag_status === "ok",
        { timeoutMs: 30_000, intervalMs: 100, what: "replication lag ok again after resuming replay" },
      );
    });
  });
});

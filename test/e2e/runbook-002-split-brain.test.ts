import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../core/clock.js";
import { describeRun, expectOk, expectOneLineError, ISO_SECONDS, labelledValues, labelsOf, runCli } from "../support/cli-run.js";
import { alive, DevRun, type AuditLine } from "../support/dev-cluster.js";
import { getJson } from "../support/processes.js";

/*
 * Runbook 002 (split-brain detection and recovery), word for word, against a
 * real `autonomy dev` cluster. The splits are made for real:
 *  - leadership_state.holder_id edited under a live leader (the leader
 *    notices at its next heartbeat and gives the lock up);
 *  - holder mismatch that stays: the leader's agent is SIGSTOPped (hung, its
 *    lock session alive) and the row names another node — seed 002's
 *    "lock held by node-2; leadership_state.holder_id = node-1";
 *  - unclosed epochs: an earlier term's close-out is undone, as if its leader
 *    crashed before writing resigned_at.
 * Each split that stays must reach the audit log as ha.split_brain.detected
 * before anyone asks.
 */

const OPERATOR = "alice";
const CLUSTER = "default";

describe("runbook 002: split-brain detection and recovery against autonomy dev", () => {
  let dev: DevRun;

  beforeAll(async () => {
    // The hung-leader split below must stay while it is detected and recovered
    // by hand: the agents' own takeover and the coordinator's failure timeout
    // (about 2 s by default) would otherwise replace the hung leader first.
    dev = await DevRun.start({ env: { AUTONOMY_TAKEOVER_AFTER: "60s", AUTONOMY_FAILURE_TIMEOUT: "60s" } });
    await dev.settled();
  }, 150_000);

  afterAll(() => dev?.stopAndExpectClean(), 90_000);

  const detect = (url: string, json = false) => runCli(["ha", "split-brain", "detect", "--orchestrator-url", url, ...(json ? ["--output", "json"] : [])]);

  async function detectJson(url: string): Promise<Record<string, unknown>> {
    const r = await detect(url, true);
    expectOk(r);
    return JSON.parse(r.stdout) as Record<string, unknown>;
  }

  /** Waits for `ha split-brain detect` to report false (a resolved split can take a report or two to clear). */
  async function waitDetectFalse(url: string): Promise<void> {
    await waitFor(async () => (await detectJson(url)).split_brain_detected === false, {
      timeoutMs: 20_000,
      intervalMs: 200,
      what: "ha split-brain detect to report false",
    });
  }

  /** The coordinator's own finding, written to the audit log without anyone asking. */
  async function detectedSince(mark: number, evidence: string): Promise<AuditLine> {
    return waitFor(
      () => dev.auditEvents().slice(mark).find((e) => e.type === "ha.split_brain.detected" && e.message.includes(evidence)),
      { timeoutMs: 15_000, intervalMs: 25, what: `an ha.split_brain.detected audit event with "${evidence}"` },
    ).catch((err: unknown) => {
      const seen = dev.auditEvents().slice(mark).map((e) => `${e.type}: ${e.message}`).join("\n");
      throw new Error(`${(err as Error).message}\naudit events since the split:\n${seen}`);
    });
  }

  /** A crash before close-out, after the fact: the previous epoch is open again; the coordinator finds it unasked. */
  async function reopenPreviousEpoch(current: number): Promise<void> {
    const mark = dev.auditEvents().length;
    const undo = await dev.sql(dev.primaryUrl, "UPDATE leader_epochs SET resigned_at = NULL, end_reason = NULL WHERE cluster_id = $1 AND epoch = $2", [
      CLUSTER,
      current - 1,
    ]);
    expect(undo.rowCount).toBe(1);
    await detectedSince(mark, "unclosed_epochs: 2 epochs have resigned_at = NULL");
  }

  async function epochs(): Promise<{ epoch: number; holder_id: string; open: boolean; end_reason: string | null }[]> {
    const r = await dev.sql<{ epoch: string; holder_id: string; open: boolean; end_reason: string | null }>(
      dev.primaryUrl,
      "SELECT epoch, holder_id, resigned_at IS NULL AS open, end_reason FROM leader_epochs WHERE cluster_id = $1 ORDER BY epoch DESC",
      [CLUSTER],
    );
    return r.rows.map((e) => ({ ...e, epoch: Number(e.epoch) }));
  }

  async function leadershipRow(): Promise<{ holder_id: string | null; epoch: number }> {
    const r = await dev.sql<{ holder_id: string | null; epoch: string }>(dev.primaryUrl, "SELECT holder_id, epoch FROM leadership_state WHERE cluster_id = $1", [CLUSTER]);
    return { holder_id: r.rows[0]!.holder_id, epoch: Number(r.rows[0]!.epoch) };
  }

  /** Exactly one Write-Ready node among the live agents, and it is `nodeId`. */
  async function expectSingleWriteReady(nodeId: string): Promise<void> {
    const live = dev.d.agents.filter((a) => alive(a.pid));
    const states = await Promise.all(live.map(async (a) => ({ node: a.node_id, wr: await dev.agentWriteReady(a.node_id) })));
    expect(states.filter((s) => s.wr?.body.ready).map((s) => s.node)).toEqual([nodeId]);
  }

  /** The stale leader of the hung-leader split (not cp-node-2, which the seed names the correct leader). */
  let stale: string | undefined;
  /** The --reason of every recovery, in order, as the audit log must record them. */
  const recoveryReasons: string[] = [];

  it("refused: unknown --strategy or a missing --reason → 2, and nothing changes", async () => {
    const leader = await dev.writeReadyLeader();
    const auditBefore = dev.auditEvents().length;
    const [unknown, noReason, noStrategy] = await Promise.all([
      runCli(["ha", "split-brain", "recover", "--orchestrator-url", dev.coordinatorUrl, "--operator", OPERATOR, "--strategy", "promote-everyone", "--reason", "x"]),
      runCli(["ha", "split-brain", "recover", "--orchestrator-url", dev.coordinatorUrl, "--operator", OPERATOR, "--strategy", "manual-reconcile"]),
      runCli(["ha", "split-brain", "recover", "--orchestrator-url", dev.coordinatorUrl, "--operator", OPERATOR, "--reason", "x"]),
    ]);
    expectOneLineError(unknown, 2, /^autonomy ha split-brain recover: unknown --strategy "promote-everyone"; valid strategies: promote-leader, manual-reconcile$/);
    expectOneLineError(noReason, 2, /^autonomy ha split-brain recover: --reason is required/);
    expectOneLineError(noStrategy, 2, /^autonomy ha split-brain recover: --strategy is required: one of promote-leader, manual-reconcile$/);
    expect(await dev.coordinatorLeader()).toMatchObject({ holder_id: leader.holder_id, current_epoch: leader.current_epoch, write_ready: true });
    expect(dev.auditEvents().slice(auditBefore).filter((e) => e.type === "ha.split_brain.recovered")).toEqual([]);
  });

  it("leadership_state edited under a live leader: the leader gives up its term at its next heartbeat; the next term is epoch+1", async () => {
    // Whether the coordinator's 200 ms poll sees this mismatch depends on where the
    // leader's heartbeat falls, so its detection is checked in the next test, where the split stays.
    const leader = await dev.writeReadyLeader();
    const other = dev.d.agents.find((a) => a.node_id !== leader.holder_id)!.node_id;
    const edit = await dev.sql(dev.primaryUrl, "UPDATE leadership_state SET holder_id = $2 WHERE cluster_id = $1", [CLUSTER, other]);
    expect(edit.rowCount).toBe(1);

    const next = await dev.writeReadyLeader(30_000, leader.current_epoch);
    expect(next.current_epoch).toBe(leader.current_epoch + 1);
    await waitDetectFalse(dev.coordinatorUrl);
    await expectSingleWriteReady(next.holder_id);
    expect(await leadershipRow()).toEqual({ holder_id: next.holder_id, epoch: leader.current_epoch + 1 });
    expect((await epochs()).slice(0, 2)).toEqual([
      { epoch: leader.current_epoch + 1, holder_id: next.holder_id, open: true, end_reason: null },
      { epoch: leader.current_epoch, holder_id: leader.holder_id, open: false, end_reason: "superseded" },
    ]);
  });

  it("holder mismatch that stays (hung leader + edited row): detect in text and JSON, then promote-leader --force", async () => {
    let leader = await dev.writeReadyLeader();
    const node2 = dev.agent("cp-node-2");
    if (leader.holder_id === "cp-node-2") {
      // The seed's story needs cp-node-2 as the correct leader and another node as the stale one.
      const moved = await runCli([
        "ha", "failover", "trigger", "--orchestrator-url", node2.url, "--target", "cp-node-1", "--operator", OPERATOR, "--reason", "set up: cp-node-1 leads",
      ]);
      expectOk(moved);
      leader = await dev.writeReadyLeader(10_000, leader.current_epoch);
    }
    stale = leader.holder_id;
    const staleAgent = dev.agent(stale);
    const epoch = leader.current_epoch;
    const mark = dev.auditEvents().length;
    const since = new Date();

    process.kill(staleAgent.pid!, "SIGSTOP");
    try {
      const edit = await dev.sql(dev.primaryUrl, "UPDATE leadership_state SET holder_id = 'cp-node-2' WHERE cluster_id = $1", [CLUSTER]);
      expect(edit.rowCount).toBe(1);
      const evidence = `lock held by ${stale}; leadership_state.holder_id = cp-node-2`;
      await detectedSince(mark, `holder_mismatch: ${evidence}`);

      // §1 detect, text, at a live node's URL (the hung leader's own URL does not answer).
      const env = { AUTONOMY_ORCHESTRATOR_URL: node2.url };
      const text = await runCli(["ha", "split-brain", "detect", "--orchestrator-url", env.AUTONOMY_ORCHESTRATOR_URL], env);
      expectOk(text);
      expect(text.lines.slice(0, 8), describeRun(text)).toEqual([
        "Split-Brain Status",
        "  Split-Brain Detected: true",
        expect.stringMatching(new RegExp(`^ {2}Detected At: {10}${ISO_SECONDS}$`)),
        "",
        "Criteria",
        expect.stringMatching(/^ {2}Epoch Divergence: {5}false\b/),
        `  Holder Mismatch:      true (${evidence})`,
        expect.stringMatching(/^ {2}Unclosed Epochs: {6}false \(1 epoch has resigned_at = NULL/),
      ]);
      const detectedAt = Date.parse(labelledValues(text.lines).get("Detected At")!);
      expect(detectedAt).toBeGreaterThanOrEqual(Math.floor(since.getTime() / 1000) * 1000);
      expect(text.lines).toContain("Explanation:");

      // §1 detect, JSON, through the coordinator: the seed's fields first, with their types.
      const j = await detectJson(dev.coordinatorUrl);
      expect(Object.keys(j).slice(0, 5)).toEqual(["split_brain_detected", "detected_at", "epoch_divergence", "holder_mismatch", "unclosed_epochs"]);
      expect(j).toMatchObject({ split_brain_detected: true, epoch_divergence: false, holder_mismatch: true, unclosed_epochs: 1 });
      expect(j.detected_at).toMatch(new RegExp(`^${ISO_SECONDS}$`));

      // §3 promote-leader with --force: the stale leader cannot resign (it is hung), so its session is ended.
      const recover = await runCli(
        [
          "ha", "split-brain", "recover",
          "--orchestrator-url", env.AUTONOMY_ORCHESTRATOR_URL,
          "--operator", OPERATOR,
          "--strategy", "promote-leader",
          "--target", "cp-node-2",
          "--reason", `${stale} hung; cp-node-2 is the correct leader`,
          "--force",
        ],
        env,
      );
      recoveryReasons.push(`${stale} hung; cp-node-2 is the correct leader`);
      expectOk(recover);
      expect(recover.lines[0], describeRun(recover)).toBe("Split-Brain Recovery");
      const seedLabels = ["Strategy", "Recovered At", "Message"];
      expect(labelsOf(recover.lines).filter((l) => seedLabels.includes(l))).toEqual(seedLabels);
      expect(recover.lines).toContain("  Strategy:     promote-leader");
      expect(recover.lines.find((l) => l.startsWith("  Recovered At: "))).toMatch(new RegExp(`^ {2}Recovered At: ${ISO_SECONDS}$`));
      // A new clean term, exactly one above the stale one.
      expect(recover.lines, describeRun(recover)).toContain(`  Message:      stale leader resigned; cp-node-2 confirmed as leader for epoch ${epoch + 1}`);
    } finally {
      process.kill(staleAgent.pid!, "SIGCONT");
    }

    // §5 post-recovery verification.
    await waitDetectFalse(node2.url);
    const status = await runCli(["ha", "status", "--orchestrator-url", node2.url]);
    expectOk(status);
    expect(status.lines.slice(0, 3), describeRun(status)).toEqual(["Role:               leader", "Session lock held:  true", "Write-Ready:        true"]);
    expect(labelledValues(status.lines).get("Holder ID")).toBe("cp-node-2");
    expect(labelledValues(status.lines).get("Epoch")).toBe(String(epoch + 1));
    // The resumed stale leader fenced itself: it is not Write-Ready.
    await waitFor(async () => (await dev.agentWriteReady(stale!))?.body.ready === false, { timeoutMs: 10_000, what: `${stale} to report {"ready": false}` });
    await expectSingleWriteReady("cp-node-2");
    expect((await epochs()).slice(0, 2)).toEqual([
      { epoch: epoch + 1, holder_id: "cp-node-2", open: true, end_reason: null },
      { epoch, holder_id: stale, open: false, end_reason: "superseded" },
    ]);
  });

  it("unclosed epochs (an earlier term never closed out): found without being asked; promote-leader via the coordinator, --output json", async () => {
    const leader = await dev.writeReadyLeader();
    await reopenPreviousEpoch(leader.current_epoch);

    const text = await detect(dev.coordinatorUrl);
    expectOk(text);
    expect(text.lines[1]).toBe("  Split-Brain Detected: true");
    expect(labelledValues(text.lines).get("Unclosed Epochs")).toMatch(/^true \(2 epochs have resigned_at = NULL\b/);
    expect(labelledValues(text.lines).get("Holder Mismatch")).toMatch(/^false\b/);
    expect(await detectJson(dev.coordinatorUrl)).toMatchObject({ split_brain_detected: true, holder_mismatch: false, unclosed_epochs: 2 });

    const r = await runCli([
      "ha", "split-brain", "recover",
      "--orchestrator-url", dev.coordinatorUrl,
      "--operator", OPERATOR,
      "--strategy", "promote-leader",
      "--reason", `${leader.holder_id} has the higher epoch and healthy replication`,
      "--output", "json",
    ]);
    recoveryReasons.push(`${leader.holder_id} has the higher epoch and healthy replication`);
    expectOk(r);
    const j = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(j).toMatchObject({ success: true, strategy: "promote-leader", leader_id: leader.holder_id, epoch: leader.current_epoch });
    expect(j.recovered_at).toMatch(new RegExp(`^${ISO_SECONDS}$`));
    expect(j.message).toMatch(new RegExp(`; ${leader.holder_id} confirmed as leader for epoch ${leader.current_epoch}$`));

    await waitDetectFalse(dev.coordinatorUrl);
    expect((await epochs()).filter((e) => e.open).map((e) => e.epoch)).toEqual([leader.current_epoch]);
    const status = await runCli(["ha", "status", "--orchestrator-url", dev.coordinatorUrl, "--output", "json"]);
    expectOk(status);
    expect(JSON.parse(status.stdout)).toMatchObject({ role: "leader", session_lock_held: true, write_ready: true, leader: { holder_id: leader.holder_id, epoch: leader.current_epoch } });
    await expectSingleWriteReady(leader.holder_id);
  });

  let reconciled: { epoch: number } | undefined;

  it("manual-reconcile: nobody holds write authority until a failover names cp-node-2, which then leads at epoch+1", async () => {
    const leader = await dev.writeReadyLeader();
    await reopenPreviousEpoch(leader.current_epoch);

    const node2 = dev.agent("cp-node-2");
    const env = { AUTONOMY_ORCHESTRATOR_URL: node2.url, AUTONOMY_OPERATOR: OPERATOR };
    const r = await runCli(
      [
        "ha", "split-brain", "recover",
        "--orchestrator-url", env.AUTONOMY_ORCHESTRATOR_URL,
        "--operator", env.AUTONOMY_OPERATOR,
        "--strategy", "manual-reconcile",
        "--reason", "investigating both nodes before choosing leader",
      ],
      env,
    );
    recoveryReasons.push("investigating both nodes before choosing leader");
    expectOk(r);
    expect(r.lines[0], describeRun(r)).toBe("Split-Brain Recovery");
    expect(r.lines).toContain("  Strategy:     manual-reconcile");
    expect(r.lines.find((l) => l.startsWith("  Recovered At: "))).toMatch(new RegExp(`^ {2}Recovered At: ${ISO_SECONDS}$`));
    expect(r.lines.find((l) => l.startsWith("  Message:"))).toMatch(/^ {2}Message: {6}elector state reset; (both|all) nodes in standby mode; trigger failover manually$/);

    // Neither node holds write authority: no lock, nobody Write-Ready, no holder in the row.
    const live = dev.d.agents.filter((a) => alive(a.pid));
    await waitFor(
      async () => {
        const views = await Promise.all(live.map((a) => dev.agentLeader(a.node_id)));
        return views.every((v) => v && v.holder_id === "" && !v.session_lock_held && !v.write_ready);
      },
      { timeoutMs: 10_000, what: "every node to see no leader after manual-reconcile" },
    );
    for (const a of live) expect(await dev.agentWriteReady(a.node_id)).toMatchObject({ status: 200, body: { ready: false, node_id: a.node_id, role: "held" } });
    // Nobody is a primary for a load balancer either.
    for (const a of live) expect((await getJson(`${dev.agent(a.node_id).url}/v1/health/primary`))?.status).toBe(503);
    expect(await leadershipRow()).toEqual({ holder_id: null, epoch: leader.current_epoch });
    expect((await epochs()).filter((e) => e.open)).toEqual([]);
    await waitDetectFalse(dev.coordinatorUrl);
    // Status vouches for no write quorum without a leader.
    const leaderless = await runCli(["ha", "status", "--orchestrator-url", dev.coordinatorUrl, "--output", "json"]);
    expectOk(leaderless);
    expect((JSON.parse(leaderless.stdout) as { quorum: unknown }).quorum).toMatchObject({ write_ready: false, unknown_reason: "no leader" });

    // §4 "trigger a failover from the correct node".
    const failover = await runCli(
      [
        "ha", "failover", "trigger",
        "--orchestrator-url", node2.url,
        "--operator", env.AUTONOMY_OPERATOR,
        "--reason", "post-reconcile: node-2 elected as correct leader",
      ],
      env,
    );
    expectOk(failover);
    expect(failover.lines[0]).toBe("Failover triggered");
    // Epoch+1 exactly: nobody campaigned while the cluster waited for the operator.
    expect(labelledValues(failover.lines).get("Message")).toMatch(new RegExp(`\\bcp-node-2 acquired epoch ${leader.current_epoch + 1}$`));
    expect(await dev.agentLeader("cp-node-2")).toMatchObject({ holder_id: "cp-node-2", current_epoch: leader.current_epoch + 1, session_lock_held: true, write_ready: true });
    expect(await dev.agentWriteReady("cp-node-2")).toMatchObject({ status: 200, body: { ready: true, node_id: "cp-node-2", role: "leader" } });
    expect((await getJson(`${dev.agent("cp-node-2").url}/v1/health/primary`))?.status).toBe(200);
    const status = await runCli(["ha", "status", "--orchestrator-url", node2.url]);
    expectOk(status);
    expect(status.lines.slice(0, 3)).toEqual(["Role:               leader", "Session lock held:  true", "Write-Ready:        true"]);
    await expectSingleWriteReady("cp-node-2");
    // History: the reconcile ended the old term, the operator's failover opened the new one.
    const history = await runCli(["ha", "history", "--orchestrator-url", dev.coordinatorUrl, "--limit", "2", "--output", "json"]);
    expectOk(history);
    const [opened, ended] = JSON.parse(history.stdout) as Record<string, unknown>[];
    expect(opened).toMatchObject({
      epoch: leader.current_epoch + 1, holder_id: "cp-node-2", opened_by: "ha.failover.completed", reason: "post-reconcile: node-2 elected as correct leader", ended_by: null,
    });
    expect(ended).toMatchObject({ epoch: leader.current_epoch, ended_by: "ha.split_brain.recovered", end_action_reason: "investigating both nodes before choosing leader" });
    reconciled = { epoch: leader.current_epoch + 1 };
  });

  it("§5 audit query shows ha.split_brain.recovered with operator and reason (text and JSON)", async () => {
    expect(reconciled, "manual-reconcile must have run").toBeDefined();
    const text = await runCli(["audit", "query", "--audit-dir", dev.d.audit_dir, "--category", "ha", "--limit", "10"]);
    expectOk(text);
    expect(text.lines[0]).toMatch(/^TIME\s+TYPE\s+OPERATOR\s+NODE\s+EPOCH\s+DETAILS$/);
    expect(text.lines.some((l) => new RegExp(`^${ISO_SECONDS}\\s+ha\\.split_brain\\.recovered\\s+${OPERATOR}\\s+.*\\(reason: investigating both nodes before choosing leader\\)$`).test(l)), text.stdout).toBe(
      true,
    );

    const json = await runCli(["audit", "query", "--audit-dir", dev.d.audit_dir, "--category", "ha", "--type", "ha.split_brain.recovered", "--output", "json"]);
    expectOk(json);
    const events = JSON.parse(json.stdout) as { operator: string; reason: string; evidence: { strategy: string } }[];
    expect(events.map((e) => [e.operator, e.evidence.strategy])).toEqual([
      [OPERATOR, "promote-leader"],
      [OPERATOR, "promote-leader"],
      [OPERATOR, "manual-reconcile"],
    ]);
    expect(events.map((e) => e.reason)).toEqual(recoveryReasons);
  });

  it("after the post-reconcile failover every other node is back in the running (a follower: not held, not fenced)", async () => {
    expect(reconciled, "manual-reconcile must have run").toBeDefined();
    const others = dev.d.agents.filter((a) => a.node_id !== "cp-node-2" && alive(a.pid));
    const roles = async () => Object.fromEntries(await Promise.all(others.map(async (a) => [a.node_id, (await dev.agentLeader(a.node_id))?.role] as const)));
    await waitFor(async () => Object.values(await roles()).every((r) => r === "follower"), { timeoutMs: 10_000, what: "every other node to be a follower" }).catch(
      async (err: unknown) => {
        throw new Error(`${(err as Error).message}; roles: ${JSON.stringify(await roles())} (${stale} was the hung leader)`);
      },
    );
  });

  it("and another node can lead again: SIGKILL of cp-node-2's agent → a new leader, automatically", async () => {
    expect(reconciled, "manual-reconcile must have run").toBeDefined();
    const node2 = dev.agent("cp-node-2");
    process.kill(node2.pid!, "SIGKILL");
    await waitFor(() => !alive(node2.pid), { timeoutMs: 5_000, what: "cp-node-2's agent to die" });
    const next = await dev.writeReadyLeader(30_000, reconciled!.epoch);
    expect(next.holder_id).not.toBe("cp-node-2");
    expect(next.current_epoch).toBe(reconciled!.epoch + 1);
    await expectSingleWriteReady(next.holder_id);
    // Either survivor may win: the coordinator's standing designee queues on the lock
    // and may still be the one chosen while the other node was held.
    const survivors = dev.d.agents.filter((a) => alive(a.pid)).map((a) => a.node_id);
    expect(survivors, `${stale} was the hung leader`).toContain(next.holder_id);
  });
});

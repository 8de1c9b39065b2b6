import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../core/clock.js";
import { expectOk, runCli } from "../support/cli-run.js";
import { DevRun } from "../support/dev-cluster.js";
import { describeShell, expectSeedBlock, expectSeedJson, expectShellOk, ISO_SECONDS_RE, runShell, seedCommand, shellJson, type ShellResult } from "../support/shell.js";

/*
 * Runbook 000 (manual failover), literally: every command is the runbook's
 * text, run through `bash -c` with the runbook's environment variables, and
 * every output is compared with the runbook's example field by field.
 *
 * Environment: AUTONOMY_OPERATOR=alice; AUTONOMY_ORCHESTRATOR_URL is what the
 * runbook says it is at each step: "pointing at the current leader node" for
 * §1/§2 (cp-node-1's agent URL), the coordinator as the "load-balancer VIP"
 * of §3 and then the new leader's own URL ("Query the new leader's endpoint").
 *
 * Substitutions in the command text (support/shell.ts seedCommand), and no other change:
 *  - `http://cp-node-1:8888` (§4) → cp-node-1's agent URL from dev.json: the
 *    dev cluster's agents listen on 127.0.0.1 ports, not on hostname:8888;
 *  - §3's `watch -n 2 '<command>'` → <command> (the quoted text, unchanged)
 *    polled every 0.5 s until the runbook's success criteria hold, with a
 *    deadline: `watch` needs a terminal and never exits;
 *  - §2 "Or with --output json" → §2's command with ` --output json` appended.
 * The cluster is steered so the runbook's names hold literally: cp-node-1 is
 * the leader when §1 starts (a setup failover with --target, not a runbook step).
 *
 * The lag thresholds are lowered (AUTONOMY_LAG_WARN / AUTONOMY_LAG_CRITICAL,
 * the runbook's ReplicationLagWarn / ReplicationLagMax) so the "replication
 * lag critical" branch needs seconds of paused standby replay.
 */

const OPERATOR = "alice";

// ---- The runbook's commands, as printed.
const S1_STATUS = ["autonomy ha status \\", '  --orchestrator-url "$AUTONOMY_ORCHESTRATOR_URL"'].join("\n");
const S2_TRIGGER = [
  "autonomy ha failover trigger \\",
  '  --orchestrator-url "$AUTONOMY_ORCHESTRATOR_URL" \\',
  '  --operator "$AUTONOMY_OPERATOR" \\',
  '  --reason "planned maintenance: OS patching on cp-node-1"',
].join("\n");
const S3_WATCH = ["watch -n 2 'autonomy ha status \\", "  --orchestrator-url \"$AUTONOMY_ORCHESTRATOR_URL\" 2>&1 | head -6'"].join("\n");
const S3_CURL_LEADER = 'curl -sf "${AUTONOMY_ORCHESTRATOR_URL}/v1/health/leader" | jq .';
const S4_CURL_WRITE_READY = 'curl -sf "http://cp-node-1:8888/v1/health/write-ready" | jq .';
const F1_CURL_HOLDER = 'curl -sf "${AUTONOMY_ORCHESTRATOR_URL}/v1/health/leader" | jq .holder_id';
const F2_CURL_LAG = "curl -sf \"${AUTONOMY_ORCHESTRATOR_URL}/v1/health/replication\" | jq '{lag_status, max_replay_lag}'";

// ---- The runbook's example outputs, as printed.
const S1_EXAMPLE = `Role:               leader
Session lock held:  true
Write-Ready:        true
Queried At:         2026-03-18T10:00:00Z

Leader
  Holder ID:        cp-node-1
  Epoch:            7
  Acquired At:      2026-03-18T08:30:00Z

Quorum
  Write-Ready:      true
  Sync Replicas:    1

Replication
  Lag Status:       ok
  Max Write Lag:    12ms
  Max Replay Lag:   18ms
  Replicas:         1`;
const S2_EXAMPLE = `Failover triggered
  Previous Holder: cp-node-1
  Previous Epoch:  7
  Resigned At:     2026-03-18T10:05:00Z
  Message:         leader resigned gracefully; successor will campaign for epoch 8`;
const S2_JSON_EXAMPLE = {
  success: true,
  previous_holder: "cp-node-1",
  previous_epoch: 7,
  resigned_at: "2026-03-18T10:05:00Z",
  message: "leader resigned gracefully; successor will campaign for epoch 8",
};
// "# Expect: "holder_id": "cp-node-2", "current_epoch": 8, "session_lock_held": true"
const S3_LEADER_EXAMPLE = { holder_id: "cp-node-2", current_epoch: 8, session_lock_held: true };
// "# Expect: {"ready": false}"
const S4_EXAMPLE = { ready: false };

// ---- What we print beyond the runbook: the intended superset, per command.
/** `autonomy ha status`: the per-node table. */
const S1_EXTRA = ["Nodes"];
/** `autonomy ha failover trigger`: who took over, at which epoch. */
const S2_EXTRA = ["Failover triggered/New Holder", "Failover triggered/New Epoch"];
const S2_JSON_EXTRA = ["new_holder", "new_epoch", "request_id"];
/** /v1/health/leader on the coordinator (the VIP of §3) and on an agent. */
const LEADER_EXTRA_COORDINATOR = ["write_ready", "acquired_at", "heartbeat_at", "answered_by", "database_reachable"];
const LEADER_EXTRA_AGENT = ["write_ready", "acquired_at", "heartbeat_at", "node_id", "role"];
/** /v1/health/write-ready on a node that is not the leader: whose answer, and why not. */
const S4_EXTRA = ["node_id", "role", "epoch", "reason"];

/** "leader resigned gracefully; successor will campaign for epoch N+1" (or, more precisely, who acquired it). */
function expectResignMessage(message: unknown, previousEpoch: number): string | undefined {
  const m = /^leader resigned gracefully; successor (?:will campaign for|(cp-node-\d+) acquired) epoch (\d+)$/.exec(String(message));
  expect(m, `Message: ${String(message)}`).not.toBeNull();
  expect(Number(m![2]), `the successor's epoch is the previous + 1: ${String(message)}`).toBe(previousEpoch + 1);
  return m![1];
}

/** A refusal: exit 3 (the runbook's 409), nothing on stdout, one line on stderr with the runbook's text. */
function expectRefusal(r: ShellResult, text: RegExp): void {
  expect(r.code, describeShell(r)).toBe(3);
  expect(r.stdout, describeShell(r)).toBe("");
  expect(r.stderr.trimEnd().split("\n"), describeShell(r)).toHaveLength(1);
  expect(r.stderr, describeShell(r)).toMatch(text);
}

describe("runbook 000, literally: the runbook's commands through bash, outputs compared with the runbook's", () => {
  let dev: DevRun;

  beforeAll(async () => {
    dev = await DevRun.start({ env: { AUTONOMY_LAG_WARN: "2s", AUTONOMY_LAG_CRITICAL: "4s" } });
    await dev.settled();
    // Set-up, not a runbook step: the runbook's story starts with cp-node-1 leading.
    const leader = await dev.writeReadyLeader();
    if (leader.holder_id !== "cp-node-1") {
      const moved = await runCli([
        "ha", "failover", "trigger", "--orchestrator-url", dev.coordinatorUrl, "--target", "cp-node-1", "--operator", OPERATOR, "--reason", "set-up: cp-node-1 leads",
      ]);
      expectOk(moved);
      await waitFor(async () => {
        const l = await dev.coordinatorLeader();
        return l?.holder_id === "cp-node-1" && l.write_ready && l.session_lock_held;
      }, {
        timeoutMs: 30_000,
        what: "cp-node-1 to lead",
      });
    }
  }, 180_000);

  afterAll(() => dev?.stopAndExpectClean(), 90_000);

  const node = (id: string) => dev.agent(id).url;
  const env = (url: string) => ({ AUTONOMY_ORCHESTRATOR_URL: url, AUTONOMY_OPERATOR: OPERATOR });

  let start: { epoch: number } | undefined;
  let after: { holder: string; epoch: number } | undefined;

  it("§1 pre-failover health check at the leader's node: the runbook's block, field by field", async () => {
    const leader = await dev.writeReadyLeader();
    expect(leader.holder_id).toBe("cp-node-1");
    // The runbook's own check (Replication / Lag Status) may read warn just after start-up.
    const r = await waitFor(
      async () => {
        const run = await runShell(S1_STATUS, env(node("cp-node-1")));
        return run.code === 0 && /^ {2}Lag Status: {7}ok$/m.test(run.stdout) ? run : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250, what: "§1 status with Lag Status ok" },
    );
    expectShellOk(r);
    const v = expectSeedBlock(r.stdout, S1_EXAMPLE, {
      what: describeShell(r),
      extra: S1_EXTRA,
      values: { "Leader/Holder ID": (x) => expect(x).toBe("cp-node-1") },
    });
    // The runbook's "Stop if" conditions do not hold.
    expect(v.get("Role")).toBe("leader");
    expect(v.get("Session lock held")).toBe("true");
    expect(v.get("Write-Ready")).toBe("true");
    expect(v.get("Replication/Lag Status")).not.toBe("critical");
    expect(Number(v.get("Leader/Epoch"))).toBe(leader.current_epoch);
    start = { epoch: leader.current_epoch };
  });

  it("§2 trigger the failover at the leader's node: the runbook's block, previous holder cp-node-1, successor at epoch+1", async () => {
    expect(start, "§1 must have run").toBeDefined();
    const r = await runShell(S2_TRIGGER, env(node("cp-node-1")));
    expectShellOk(r);
    let successor: string | undefined;
    const v = expectSeedBlock(r.stdout, S2_EXAMPLE, {
      what: describeShell(r),
      extra: S2_EXTRA,
      values: {
        "Failover triggered/Previous Holder": (x) => expect(x).toBe("cp-node-1"),
        "Failover triggered/Previous Epoch": (x) => expect(x).toBe(String(start!.epoch)),
        "Failover triggered/Message": (x) => {
          successor = expectResignMessage(x, start!.epoch);
        },
      },
    });
    expect(Date.parse(v.get("Failover triggered/Resigned At")!)).toBeLessThanOrEqual(Date.now());
    if (successor) expect(successor).not.toBe("cp-node-1");
    expect(r.lines[0]).toBe("Failover triggered");
  });

  it("§3 the runbook's watch command (via the VIP, then at the new leader's node) and the leader curl: another node, epoch+1, Write-Ready", async () => {
    expect(start, "§1 must have run").toBeDefined();
    const inner = seedCommand(S3_WATCH, [["watch -n 2 '", ""], ["| head -6'", "| head -6"]]);
    // Through the coordinator, as the runbook's "load-balancer VIP that routes to any live node".
    const viaVip = await waitFor(
      async () => {
        const run = await runShell(inner, env(dev.coordinatorUrl));
        return run.lines[1] === "Session lock held:  true" && run.lines[2] === "Write-Ready:        true" ? run : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500, what: "the watch command to show Session lock held: true via the coordinator" },
    );
    expectShellOk(viaVip);
    const head6 = S1_EXAMPLE.split("\n").slice(0, 6).join("\n");
    expect(viaVip.lines, describeShell(viaVip)).toHaveLength(6);
    expectSeedBlock(viaVip.stdout, head6, { what: describeShell(viaVip), extra: [] });
    expect(viaVip.lines[0]).toBe("Role:               leader");

    // "curl -sf …/v1/health/leader | jq ." via the VIP: holder changed, epoch+1, lock held.
    const vipLeader = await runShell(S3_CURL_LEADER, env(dev.coordinatorUrl));
    expectShellOk(vipLeader);
    const l = shellJson<Record<string, unknown>>(vipLeader);
    expectSeedJson(l, S3_LEADER_EXAMPLE, { what: describeShell(vipLeader), extraKeys: LEADER_EXTRA_COORDINATOR });
    expect(l.holder_id).not.toBe("cp-node-1");
    expect(l.current_epoch).toBe(start!.epoch + 1);
    expect(l.session_lock_held).toBe(true);
    const holder = String(l.holder_id);

    // "Query the new leader's endpoint": the same two commands at its own URL.
    const own = await runShell(inner, env(node(holder)));
    expectShellOk(own);
    expectSeedBlock(own.stdout, head6, { what: describeShell(own), extra: [] });
    expect(own.lines.slice(0, 3), describeShell(own)).toEqual(["Role:               leader", "Session lock held:  true", "Write-Ready:        true"]);
    const ownLeader = await runShell(S3_CURL_LEADER, env(node(holder)));
    expectShellOk(ownLeader);
    const ol = shellJson<Record<string, unknown>>(ownLeader);
    expectSeedJson(ol, S3_LEADER_EXAMPLE, { what: describeShell(ownLeader), extraKeys: LEADER_EXTRA_AGENT });
    expect(ol).toMatchObject({ holder_id: holder, current_epoch: start!.epoch + 1, session_lock_held: true });

    // The watch left at the old leader's URL: cp-node-1 no longer reports the lock.
    const old = await runShell(inner, env(node("cp-node-1")));
    expectShellOk(old);
    expect(old.lines.slice(0, 3), describeShell(old)).toEqual(["Role:               follower", "Session lock held:  false", "Write-Ready:        false"]);
    after = { holder, epoch: start!.epoch + 1 };
  });

  it('§4 the old leader released authority: curl -sf …cp-node-1…/v1/health/write-ready | jq . → {"ready": false}', async () => {
    expect(after, "§3 must have run").toBeDefined();
    const r = await runShell(seedCommand(S4_CURL_WRITE_READY, [["http://cp-node-1:8888", node("cp-node-1")]]), env(node("cp-node-1")));
    expectShellOk(r);
    const body = shellJson<Record<string, unknown>>(r);
    expectSeedJson(body, S4_EXAMPLE, { what: describeShell(r), extraKeys: S4_EXTRA });
    expect(body.ready, describeShell(r)).toBe(false);
  });

  it("409 not the leader: §2 re-run at cp-node-1 is refused with the runbook's text; jq .holder_id names the leader; §2 --output json at its endpoint", async () => {
    expect(after, "§3 must have run").toBeDefined();
    const refused = await runShell(S2_TRIGGER, env(node("cp-node-1")));
    expectRefusal(refused, new RegExp(`precondition not met: not the leader; leader is ${after!.holder}\\b`));
    expect((await dev.coordinatorLeader())?.current_epoch, "nothing changed").toBe(after!.epoch);

    // "Find the current leader"
    const find = await runShell(F1_CURL_HOLDER, env(node("cp-node-1")));
    expectShellOk(find);
    expect(find.stdout, describeShell(find)).toBe(`"${after!.holder}"\n`);

    // "Re-run the failover command against the leader's endpoint" — with --output json.
    const leaderUrl = node(shellJson<string>(find));
    const r = await runShell(`${S2_TRIGGER} \\\n  --output json`, env(leaderUrl));
    expectShellOk(r);
    const j = shellJson<Record<string, unknown>>(r);
    let successor: string | undefined;
    expectSeedJson(j, S2_JSON_EXAMPLE, {
      what: describeShell(r),
      extraKeys: S2_JSON_EXTRA,
      values: {
        message: (m) => {
          successor = expectResignMessage(m, after!.epoch);
        },
      },
    });
    expect(Object.keys(j).slice(0, 5), "the runbook's keys first, in its order").toEqual(Object.keys(S2_JSON_EXAMPLE));
    expect(j).toMatchObject({ success: true, previous_holder: after!.holder, previous_epoch: after!.epoch });
    expect(j.resigned_at).toMatch(ISO_SECONDS_RE);
    const next = await dev.writeReadyLeader(30_000, after!.epoch);
    expect(next.current_epoch).toBe(after!.epoch + 1);
    expect(next.holder_id).not.toBe(after!.holder);
    if (successor) expect(successor).toBe(next.holder_id);
    after = { holder: next.holder_id, epoch: next.current_epoch };
  });

  it("409 replication lag critical: the runbook's lag curl shows critical, §2 is refused with its text; lag returns to ok (§5)", async () => {
    expect(after, "the earlier steps must have run").toBeDefined();
    const leaderEnv = env(node(after!.holder));
    await dev.sql(dev.primaryUrl, "CREATE TABLE IF NOT EXISTS e2e_literal_lag (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())");
    await dev.sql(dev.standbyUrl, "SELECT pg_wal_replay_pause()");
    let writing = true;
    // Load, not synchronisation: a steady trickle of WAL the paused standby does not replay.
    const writer = (async () => {
      while (writing) {
        await dev.sql(dev.primaryUrl, "INSERT INTO e2e_literal_lag DEFAULT VALUES").catch(() => undefined);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    try {
      const lag = await waitFor(
        async () => {
          const run = await runShell(F2_CURL_LAG, leaderEnv);
          return run.code === 0 && (JSON.parse(run.stdout) as { lag_status?: string }).lag_status === "critical" ? run : undefined;
        },
        { timeoutMs: 40_000, intervalMs: 250, what: "the runbook's lag curl to show lag_status critical at the leader's node" },
      );
      const shown = shellJson<Record<string, unknown>>(lag);
      expect(Object.keys(shown)).toEqual(["lag_status", "max_replay_lag"]);
      expect(shown.max_replay_lag, describeShell(lag)).toMatch(/^\d+(\.\d+)?(ms|s)$/);
      // The coordinator acts on the leader's report; wait until it has it too.
      await waitFor(async () => (await runShell(F2_CURL_LAG, env(dev.coordinatorUrl))).stdout.includes('"critical"'), {
        timeoutMs: 20_000,
        intervalMs: 250,
        what: "the coordinator to see lag critical",
      });

      const refused = await runShell(S2_TRIGGER, leaderEnv);
      expectRefusal(refused, /precondition not met: replication lag critical; /);
      expect(await dev.coordinatorLeader()).toMatchObject({ holder_id: after!.holder, current_epoch: after!.epoch });
    } finally {
      writing = false;
      await writer;
      await dev.sql(dev.standbyUrl, "SELECT pg_wal_replay_resume()");
    }
    // §5 "Replication lag returns to ok after the brief transition window."
    const ok = await waitFor(
      async () => {
        const run = await runShell(F2_CURL_LAG, leaderEnv);
        return run.code === 0 && (JSON.parse(run.stdout) as { lag_status?: string }).lag_status === "ok" ? run : undefined;
      },
      { timeoutMs: 40_000, intervalMs: 250, what: "the runbook's lag curl to show lag_status ok again" },
    );
    expect(shellJson(ok)).toMatchObject({ lag_status: "ok" });
  });

  it("§5 post-failover checklist: the new leader reports Write-Ready: true; the epochs rose by exactly 1 per failover", async () => {
    expect(after, "the earlier steps must have run").toBeDefined();
    const r = await runShell(S1_STATUS, env(node(after!.holder)));
    expectShellOk(r);
    const v = expectSeedBlock(r.stdout, S1_EXAMPLE, { what: describeShell(r), extra: S1_EXTRA });
    expect(v.get("Role")).toBe("leader");
    expect(v.get("Write-Ready")).toBe("true");
    expect(v.get("Leader/Holder ID")).toBe(after!.holder);
    expect(v.get("Leader/Epoch")).toBe(String(after!.epoch));
    const epochs = await dev.sql<{ epoch: string }>(dev.primaryUrl, "SELECT epoch FROM leader_epochs WHERE epoch >= $1 ORDER BY epoch", [start!.epoch]);
    expect(epochs.rows.map((e) => Number(e.epoch))).toEqual([start!.epoch, start!.epoch + 1, start!.epoch + 2]);
    // "Audit event ha.failover.completed appears": one per runbook failover.
    const completed = dev.auditEvents().filter((e) => e.type === "ha.failover.completed" && e.reason === "planned maintenance: OS patching on cp-node-1");
    expect(completed.map((e) => e.epoch)).toEqual([start!.epoch + 1, start!.epoch + 2]);
  });
});

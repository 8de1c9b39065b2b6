import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../core/clock.js";
import { expectOk, runCli } from "../support/cli-run.js";
import { DevRun } from "../support/dev-cluster.js";
import { describeShell, expectSeedBlock, expectSeedJson, expectShellOk, ISO_SECONDS_RE, parseBlock, runShell, seedCommand, shellJson } from "../support/shell.js";

/*
 * Runbook 002 (split-brain detection and recovery), literally: every command
 * is the runbook's text, run through `bash -c` with the runbook's environment
 * (AUTONOMY_ORCHESTRATOR_URL = the coordinator, as the README maps the
 * runbooks onto `autonomy dev`; AUTONOMY_OPERATOR=alice; AUTONOMY_AUDIT_DIR =
 * dev's audit dir), and every output is compared with the runbook's example
 * field by field.
 *
 * Substitutions in the command text (support/shell.ts seedCommand), and no other change:
 *  - `http://cp-node-2:8888` (§4's failover) → cp-node-2's agent URL from
 *    dev.json: dev's agents listen on 127.0.0.1 ports, not on hostname:8888;
 *  - `<split-start-time>` (§4's second SQL query) → the time the split was made.
 * The runbook's published text lost its layout (indentation, and in §4 the
 * line breaks of a nested list): the commands are written here one flag per
 * line with `\` continuations as everywhere else in the runbook, and its
 * example outputs with the two-space indentation of runbook 000's blocks; the
 * indentation and value columns are therefore not compared for this runbook.
 * The §4 SQL is run as printed through the pg client on the primary.
 *
 * The splits are real: the previous term's close-out is undone on the primary
 * ("node-1 started epoch 8 but crashed before writing resigned_at"), with
 * cp-node-1 holding that term and cp-node-2 the current one, so the runbook's
 * node-1 / node-2 are dev's cp-node-1 / cp-node-2 (set up with --target
 * failovers, which are not runbook steps).
 */

const OPERATOR = "alice";
const CLUSTER = "default";

// ---- The runbook's commands, as printed.
const D1_DETECT = ["autonomy ha split-brain detect \\", '--orchestrator-url "$AUTONOMY_ORCHESTRATOR_URL"'].join("\n");
const D1_DETECT_JSON = ["autonomy ha split-brain detect \\", '--orchestrator-url "$AUTONOMY_ORCHESTRATOR_URL" \\', "--output json | jq ."].join("\n");
const recover = (strategy: string, reason: string, force = false) =>
  [
    "autonomy ha split-brain recover \\",
    '--orchestrator-url "$AUTONOMY_ORCHESTRATOR_URL" \\',
    '--operator "$AUTONOMY_OPERATOR" \\',
    `--strategy ${strategy} \\`,
    `--reason "${reason}"${force ? " \\\n--force" : ""}`,
  ].join("\n");
const S3_PROMOTE = recover("promote-leader", "node-2 has higher epoch and healthy replication; node-1 stale");
const S3_PROMOTE_FORCE = recover("promote-leader", "node-1 crash-recovered; node-2 is the correct leader", true);
const S4_MANUAL = recover("manual-reconcile", "investigating both nodes before choosing leader");
const S4_SQL_EPOCHS = "SELECT epoch, holder_id, acquired_at, resigned_at FROM leader_epochs ORDER BY epoch DESC LIMIT 10;";
const S4_SQL_DECISIONS =
  "SELECT pd.*, le.holder_id AS decided_by_leader FROM promotion_decisions pd JOIN leader_epochs le ON pd.epoch = le.epoch WHERE pd.decided_at > '<split-start-time>' ORDER BY pd.decided_at;";
const S4_FAILOVER = [
  "autonomy ha failover trigger \\",
  '--orchestrator-url "http://cp-node-2:8888" \\',
  '--operator "$AUTONOMY_OPERATOR" \\',
  '--reason "post-reconcile: node-2 elected as correct leader"',
].join("\n");
const S5_STATUS = ["autonomy ha status \\", '--orchestrator-url "$AUTONOMY_ORCHESTRATOR_URL"'].join("\n");
const S5_AUDIT = ["autonomy audit query \\", '--audit-dir "$AUTONOMY_AUDIT_DIR" \\', "--category ha \\", "--limit 10"].join("\n");

// ---- The runbook's example outputs (indentation restored, see above).
const D1_EXAMPLE = `Split-Brain Status
  Split-Brain Detected: true
  Detected At: 2026-03-18T11:00:00Z

Criteria
  Epoch Divergence: true (node-1 reports epoch 8; node-2 reports epoch 8)
  Holder Mismatch: true (lock held by node-2; leadership_state.holder_id = node-1)
  Unclosed Epochs: true (2 epochs have resigned_at = NULL)

Explanation:
  node-1 started epoch 8 but crashed before writing resigned_at.
  node-2 campaigned and also acquired epoch 8 (epoch counter not yet incremented).`;
const D1_JSON_EXAMPLE = {
  split_brain_detected: true,
  detected_at: "2026-03-18T11:00:00Z",
  epoch_divergence: true,
  holder_mismatch: true,
  unclosed_epochs: 2,
};
const S3_EXAMPLE = `Split-Brain Recovery
  Strategy: promote-leader
  Recovered At: 2026-03-18T11:10:00Z
  Message: stale leader resigned; node-2 confirmed as leader for epoch 9`;
const S4_EXAMPLE = `Split-Brain Recovery
  Strategy: manual-reconcile
  Recovered At: 2026-03-18T11:05:00Z
  Message: elector state reset; both nodes in standby mode; trigger failover manually`;

// ---- What we print beyond the runbook: the intended superset, per command.
/** `ha split-brain detect`: three more criteria. */
const D1_EXTRA = ["Criteria/Multiple Holders", "Criteria/Multiple Write-Ready", "Criteria/Multiple Primaries"];
/** `ha split-brain detect --output json`: every criterion with its detail. */
const D1_JSON_EXTRA = ["criteria"];
/** `ha split-brain recover`: the leader it leaves, and its epoch. */
const RECOVER_EXTRA = ["Split-Brain Recovery/Leader", "Split-Brain Recovery/Epoch"];
/** `ha split-brain recover --strategy manual-reconcile`: which leader it made resign. */
const MANUAL_EXTRA = ["Split-Brain Recovery/Resigned"];

const BOOL_WITH_DETAIL = /^(true|false) \(.+\)$/;

/** Runs detect in text and JSON and compares both with the runbook's examples; returns the JSON. */
async function detectBoth(env: Record<string, string>): Promise<{ text: Map<string, string>; json: Record<string, unknown> }> {
  const t = await runShell(D1_DETECT, env);
  expectShellOk(t);
  const j = await runShell(D1_DETECT_JSON, env);
  expectShellOk(j);
  const json = shellJson<Record<string, unknown>>(j);
  const detected = json.split_brain_detected === true;
  const text = expectSeedBlock(t.stdout, D1_EXAMPLE, {
    what: describeShell(t),
    extra: D1_EXTRA,
    layout: false,
    values: {
      "Split-Brain Status/Detected At": (v) => expect(v, describeShell(t)).toMatch(detected ? ISO_SECONDS_RE : /^(-|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z)$/),
      "Criteria/Epoch Divergence": (v) => expect(v, describeShell(t)).toMatch(BOOL_WITH_DETAIL),
      "Criteria/Holder Mismatch": (v) =>
        expect(v, describeShell(t)).toMatch(/^(true \(lock held by cp-node-\d+; leadership_state\.holder_id = cp-node-\d+\)|false \(.+\))$/),
      "Criteria/Unclosed Epochs": (v) => expect(v, describeShell(t)).toMatch(/^(true|false) \(\d+ epochs? ha(s|ve) resigned_at = NULL\b.*\)$/),
    },
  });
  expectSeedJson(json, D1_JSON_EXAMPLE, {
    what: describeShell(j),
    extraKeys: D1_JSON_EXTRA,
    values: {
      detected_at: (v) => (detected ? expect(v).toMatch(ISO_SECONDS_RE) : expect(v === null || ISO_SECONDS_RE.test(String(v)), String(v)).toBe(true)),
    },
  });
  expect(Object.keys(json).slice(0, 5), "the runbook's keys first, in its order").toEqual(Object.keys(D1_JSON_EXAMPLE));
  // Text and JSON agree, and with each other's criteria.
  const flag = (label: string) => text.get(label)!.split(" ")[0] === "true";
  expect(text.get("Split-Brain Status/Split-Brain Detected")).toBe(String(json.split_brain_detected));
  expect(flag("Criteria/Epoch Divergence")).toBe(json.epoch_divergence);
  expect(flag("Criteria/Holder Mismatch")).toBe(json.holder_mismatch);
  expect(Number(/\((\d+) epoch/.exec(text.get("Criteria/Unclosed Epochs")!)![1])).toBe(json.unclosed_epochs);
  expect(flag("Criteria/Unclosed Epochs")).toBe((json.unclosed_epochs as number) > 1);
  return { text, json };
}

describe("runbook 002, literally: the runbook's commands through bash, outputs compared with the runbook's", () => {
  let dev: DevRun;
  let env: Record<string, string>;

  /** The runbook's split: cp-node-2 leads; cp-node-1's earlier term is left open. */
  async function splitPreviousTermOpen(): Promise<{ since: Date; epoch: number }> {
    const leader = await dev.writeReadyLeader();
    expect(leader.holder_id).toBe("cp-node-2");
    const since = new Date(Date.now() - 1000);
    const prev = await dev.sql<{ holder_id: string }>(dev.primaryUrl, "SELECT holder_id FROM leader_epochs WHERE cluster_id = $1 AND epoch = $2", [CLUSTER, leader.current_epoch - 1]);
    expect(prev.rows[0]?.holder_id).toBe("cp-node-1");
    const undo = await dev.sql(dev.primaryUrl, "UPDATE leader_epochs SET resigned_at = NULL, end_reason = NULL WHERE cluster_id = $1 AND epoch = $2", [
      CLUSTER,
      leader.current_epoch - 1,
    ]);
    expect(undo.rowCount).toBe(1);
    await waitFor(async () => shellJson<{ split_brain_detected: boolean }>(await runShell(D1_DETECT_JSON, env)).split_brain_detected, {
      timeoutMs: 20_000,
      intervalMs: 200,
      what: "the runbook's detect --output json to report split_brain_detected: true",
    });
    return { since, epoch: leader.current_epoch };
  }

  async function waitResolved(): Promise<void> {
    await waitFor(async () => shellJson<{ split_brain_detected: boolean }>(await runShell(D1_DETECT_JSON, env)).split_brain_detected === false, {
      timeoutMs: 20_000,
      intervalMs: 200,
      what: "the runbook's detect --output json to report split_brain_detected: false",
    });
  }

  beforeAll(async () => {
    dev = await DevRun.start();
    await dev.settled();
    env = { AUTONOMY_ORCHESTRATOR_URL: dev.coordinatorUrl, AUTONOMY_OPERATOR: OPERATOR, AUTONOMY_AUDIT_DIR: dev.d.audit_dir };
    // Set-up, not runbook steps: cp-node-1 holds a term, then cp-node-2 the next one.
    for (const target of ["cp-node-1", "cp-node-2"]) {
      const before = await dev.writeReadyLeader();
      if (target === "cp-node-1" && before.holder_id === "cp-node-1") continue;
      const moved = await runCli([
        "ha", "failover", "trigger", "--orchestrator-url", dev.coordinatorUrl, "--target", target, "--operator", OPERATOR, "--reason", `set-up: ${target} leads`,
      ]);
      expectOk(moved);
      await waitFor(
        async () => {
          const l = await dev.coordinatorLeader();
          return l?.holder_id === target && l.write_ready && l.session_lock_held;
        },
        { timeoutMs: 30_000, what: `${target} to lead` },
      );
    }
  }, 180_000);

  afterAll(() => dev?.stopAndExpectClean(), 90_000);

  it("§1 on a healthy cluster: detect in text and `--output json | jq .` have the runbook's fields; split_brain_detected: false", async () => {
    const { json } = await detectBoth(env);
    expect(json).toMatchObject({ split_brain_detected: false, epoch_divergence: false, holder_mismatch: false, unclosed_epochs: 1 });
  });

  it("§1 + §3 promote-leader: the split is detected with the runbook's fields; recovery confirms node-2 (cp-node-2)", async () => {
    const { epoch } = await splitPreviousTermOpen();
    const { json } = await detectBoth(env);
    expect(json).toMatchObject({ split_brain_detected: true, unclosed_epochs: 2 });

    const r = await runShell(S3_PROMOTE, env);
    expectShellOk(r);
    expectPromoted(r.stdout, describeShell(r), epoch);
    await waitResolved();
  });

  it("§3 promote-leader --force: the same, with the runbook's --force command", async () => {
    const { epoch } = await splitPreviousTermOpen();
    const r = await runShell(S3_PROMOTE_FORCE, env);
    expectShellOk(r);
    expectPromoted(r.stdout, describeShell(r), epoch);
    await waitResolved();
  });

  function expectPromoted(printed: string, what: string, splitEpoch: number): void {
    let confirmed: { node: string; epoch: number } | undefined;
    expectSeedBlock(printed, S3_EXAMPLE, {
      what,
      extra: RECOVER_EXTRA,
      layout: false,
      values: {
        "Split-Brain Recovery/Message": (v) => {
          // "stale leader resigned" when a stale node held the lock; "stale records cleared" when only its rows were left.
          const m = /^stale (?:leader resigned|records cleared); (cp-node-\d+) confirmed as leader for epoch (\d+)$/.exec(v);
          expect(m, what).not.toBeNull();
          confirmed = { node: m![1]!, epoch: Number(m![2]) };
        },
      },
    });
    // The runbook's node-2 is confirmed, at the split's epoch or the next one.
    expect(confirmed?.node, what).toBe("cp-node-2");
    expect([splitEpoch, splitEpoch + 1], what).toContain(confirmed!.epoch);
  }

  let reconciled: { since: Date; epoch: number } | undefined;

  it("§4 manual-reconcile: the runbook's block; nobody holds write authority; its SQL runs; its failover makes cp-node-2 the leader", async () => {
    const split = await splitPreviousTermOpen();
    const r = await runShell(S4_MANUAL, env);
    expectShellOk(r);
    expectSeedBlock(r.stdout, S4_EXAMPLE, {
      what: describeShell(r),
      extra: MANUAL_EXTRA,
      layout: false,
      values: {
        "Split-Brain Recovery/Message": (v) =>
          expect(v, describeShell(r)).toMatch(/^elector state reset; (both|all) nodes in standby mode; trigger failover manually$/),
      },
    });
    // "neither node holds write authority"
    await waitFor(
      async () => {
        const views = await Promise.all(dev.d.agents.map((a) => dev.agentLeader(a.node_id)));
        return views.every((v) => v && !v.session_lock_held && !v.write_ready);
      },
      { timeoutMs: 10_000, what: "no node to hold write authority after manual-reconcile" },
    );

    // The runbook's two inspections, as printed (the placeholder filled in).
    const epochs = await dev.sql(dev.primaryUrl, S4_SQL_EPOCHS);
    expect(epochs.fields.map((f) => f.name)).toEqual(["epoch", "holder_id", "acquired_at", "resigned_at"]);
    expect(epochs.rows.length).toBeGreaterThanOrEqual(2);
    expect(epochs.rows.filter((e) => e.resigned_at === null), "no open term after manual-reconcile").toEqual([]);
    const decisions = await dev.sql(dev.primaryUrl, seedCommand(S4_SQL_DECISIONS, [["<split-start-time>", split.since.toISOString()]]));
    expect(decisions.fields.map((f) => f.name)).toEqual(expect.arrayContaining(["epoch", "decided_by", "decided_at", "decided_by_leader"]));
    for (const d of decisions.rows) expect(d.decided_by_leader).toBe(d.decided_by);

    // "Manually trigger a failover from the correct node"
    const f = await runShell(seedCommand(S4_FAILOVER, [["http://cp-node-2:8888", dev.agent("cp-node-2").url]]), env);
    expectShellOk(f);
    expect(f.lines[0], describeShell(f)).toBe("Failover triggered");
    const leader = await dev.writeReadyLeader(30_000);
    expect(leader).toMatchObject({ holder_id: "cp-node-2", current_epoch: split.epoch + 1 });
    reconciled = { since: split.since, epoch: split.epoch + 1 };
  });

  it("§5 post-recovery verification: detect false; status Role: leader, Write-Ready: true, Session lock held: true; the audit shows ha.split_brain.recovered", async () => {
    expect(reconciled, "§4 must have run").toBeDefined();
    await waitResolved();
    // "# Expect: split_brain_detected: false"
    const d = await runShell(D1_DETECT, env);
    expectShellOk(d);
    const dv = expectSeedBlock(d.stdout, D1_EXAMPLE, {
      what: describeShell(d),
      extra: D1_EXTRA,
      layout: false,
      values: {
        "Split-Brain Status/Split-Brain Detected": (v) => expect(v).toBe("false"),
        "Split-Brain Status/Detected At": (v) => expect(v).toMatch(/^(-|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z)$/),
        "Criteria/Epoch Divergence": (v) => expect(v).toMatch(/^false \(.+\)$/),
        "Criteria/Holder Mismatch": (v) => expect(v).toMatch(/^false \(.+\)$/),
        "Criteria/Unclosed Epochs": (v) => expect(v).toMatch(/^false \(1 epoch has resigned_at = NULL\b.*\)$/),
      },
    });
    expect(dv.get("Split-Brain Status/Split-Brain Detected")).toBe("false");

    // "# Expect: Role: leader, Write-Ready: true, Session lock held: true"
    const s = await runShell(S5_STATUS, env);
    expectShellOk(s);
    const fields = new Map(parseBlock(s.stdout).fields.filter((f) => f.section === "").map((f) => [f.label, f.value]));
    expect(Object.fromEntries(["Role", "Write-Ready", "Session lock held"].map((k) => [k, fields.get(k)])), describeShell(s)).toEqual({
      Role: "leader",
      "Write-Ready": "true",
      "Session lock held": "true",
    });
    const leaderFields = new Map(parseBlock(s.stdout).fields.filter((f) => f.section === "Leader").map((f) => [f.label, f.value]));
    expect(leaderFields.get("Holder ID")).toBe("cp-node-2");
    expect(leaderFields.get("Epoch")).toBe(String(reconciled!.epoch));

    // "# Expect: ha.split_brain.recovered event"
    const a = await runShell(S5_AUDIT, env);
    expectShellOk(a);
    expect(a.lines[0], describeShell(a)).toMatch(/^TIME\s+TYPE\s+OPERATOR\s+NODE\s+EPOCH\s+DETAILS$/);
    const recovered = a.lines.filter((l) => /\sha\.split_brain\.recovered\s/.test(l));
    expect(recovered.length, describeShell(a)).toBeGreaterThanOrEqual(1);
    expect(
      recovered.some((l) => new RegExp(`^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}Z\\s+ha\\.split_brain\\.recovered\\s+${OPERATOR}\\s+.*investigating both nodes before choosing leader`).test(l)),
      describeShell(a),
    ).toBe(true);
  });
});

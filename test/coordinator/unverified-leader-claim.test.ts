import { writeFile, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import pgLib from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../core/clock.js";
import { RecoveryStrategy } from "../../gen/autonomy/ha/v1/admin_pb.js";
import { startPgCluster, type PgCluster } from "../../pgcluster/index.js";
import { onLockDatabase } from "../../coordinator/view/builders.js";
import { Harness } from "./support/harness.js";
import { openRawStream, reportMessage, type RawStream } from "./support/scripted-agent.js";

const who = { operator: "carol", reason: "split-brain drill" };

describe("promote-leader crowns only a claim the coordinator's own database confirms", () => {
  let pg: PgCluster;
  let sql: pgLib.Client;
  let h: Harness | undefined;
  let rogue: { stream: RawStream; timer: NodeJS.Timeout } | undefined;
  let scratch: string;

  beforeAll(async () => {
    pg = await startPgCluster({ standbys: 0 });
    sql = new pgLib.Client({ connectionString: pg.primary.url() });
    await sql.connect();
    scratch = await mkdtemp(path.join(os.tmpdir(), "autonomy-unverified-"));
  });
  afterEach(async () => {
    if (rogue) {
      clearInterval(rogue.timer);
      rogue.stream.close();
      rogue = undefined;
    }
    await h?.close();
    h = undefined;
  });
  afterAll(async () => {
    await sql?.end();
    await pg?.close();
    await rm(scratch, { recursive: true, force: true });
  });

  /** A stream that keeps saying "I hold the lock, epoch 100" about a database nobody can see. */
  function rogueClaim(harness: Harness, nodeId = "cp-node-9"): RawStream {
    const stream = openRawStream(harness.url, nodeId);
    let sequence = 0;
    const claim = () =>
      stream.send(
        reportMessage(nodeId, harness.clusterId, {
          sequence: ++sequence, role: "leader", sessionLockHeld: true, writeReady: true, writeReadyReason: "", epoch: 100, highestEpochSeen: 100,
          lockBackendPid: 4242, ...onLockDatabase("7399999999999999999", 1),
          observedLeader: { holderId: nodeId, epoch: 100, acquiredAt: undefined, writeReady: true, heartbeatAt: undefined },
        }),
      );
    claim();
    rogue = { stream, timer: setInterval(claim, 100) };
    return stream;
  }

  const snapshot = async (harness: Harness) => ({
    leadership: (await sql.query(`SELECT holder_id, epoch, acquired_at FROM ${harness.schema}.leadership_state WHERE cluster_id = $1`, [harness.clusterId])).rows,
    epochs: (await sql.query(`SELECT epoch, holder_id, resigned_at, end_reason FROM ${harness.schema}.leader_epochs WHERE cluster_id = $1 ORDER BY epoch`, [harness.clusterId])).rows,
  });

  async function splitWithRogue(auditDir?: string) {
    h = await new Harness(pg.primary.url()).start({ auditDir });
    const leader = await h.agent("cp-node-1");
    await leader.campaign();
    await h.agent("cp-node-2");
    rogueClaim(h);
    const admin = h.admin();
    const d = await waitFor(async () => {
      const r = await admin.detectSplitBrain({});
      return r.splitBrainDetected ? r : undefined;
    }, { timeoutMs: 10_000, what: "the rogue's claim seen as a split" });
    return { h, leader, admin, d };
  }

  it("a rogue claiming epoch 100 on an unknown database is not advised, and promote-leader refuses it, changing nothing", async () => {
    const { h, leader, admin, d } = await splitWithRogue();
    expect(d.explanation).not.toMatch(/promote-leader/);
    expect(d.explanation).toMatch(
      /cp-node-9 reports the highest epoch \(100\), but its claim is unverified: cp-node-9 claims the lock on database 7399999999999999999\/tl1, which is not the coordinator's lock database \(\d+\/tl1\)\. Verify on that database that cp-node-9's lock session \(pid 4242\) holds the lock/,
    );
    const before = await snapshot(h);
    const commandsBefore = leader.commands.length;
    const auditBefore = await h.audit();
    const statusBefore = await admin.getStatus({});

    for (const targetNode of ["", "cp-node-9"]) {
      const err = await admin.recoverSplitBrain({ ...who, strategy: RecoveryStrategy.PROMOTE_LEADER, targetNode }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConnectError);
      expect((err as ConnectError).code).toBe(Code.FailedPrecondition);
      expect((err as ConnectError).rawMessage).toMatch(
        targetNode === ""
          ? /^precondition not met: cannot choose the correct leader: the highest claim is not confirmed by the coordinator's database: cp-node-9 claims the lock on database 7399999999999999999\/tl1/
          : /^precondition not met: cannot confirm cp-node-9 as leader: cp-node-9 claims the lock on database 7399999999999999999\/tl1, which is not the coordinator's lock database .*; nothing was changed/,
      );
    }
    expect(await snapshot(h)).toEqual(before);
    expect(leader.role).toBe("leader");
    expect(leader.commands.slice(commandsBefore)).toEqual([]);
    expect(await h.audit()).toEqual(auditBefore);
    const statusAfter = await admin.getStatus({});
    const term = (l: typeof statusBefore.leader) => ({ holderId: l?.holderId, epoch: l?.epoch, acquiredAt: l?.acquiredAt, writeReady: l?.writeReady });
    expect(term(statusAfter.leader)).toEqual(term(statusBefore.leader)); // the heartbeat alone moves on
    expect(statusAfter.leader?.holderId).toBe("cp-node-1");
  });

  it("a rogue naming a pid that does not hold the lock on the coordinator's own database is refused too", async () => {
    h = await new Harness(pg.primary.url()).start();
    const leader = await h.agent("cp-node-1");
    await leader.campaign();
    const id = (await sql.query<{ system_identifier: string; tl: number }>("SELECT system_identifier::text, (SELECT timeline_id FROM pg_control_checkpoint()) AS tl FROM pg_control_system()")).rows[0]!;
    const stream = openRawStream(h.url, "cp-node-9");
    let sequence = 0;
    const claim = () =>
      stream.send(reportMessage("cp-node-9", h!.clusterId, {
        sequence: ++sequence, role: "leader", sessionLockHeld: true, writeReady: true, epoch: 100, highestEpochSeen: 100,
        lockBackendPid: 4242, ...onLockDatabase(id.system_identifier, id.tl),
      }));
    claim();
    rogue = { stream, timer: setInterval(claim, 100) };
    const admin = h.admin();
    await waitFor(async () => (await admin.getStatus({})).nodes.some((n) => n.nodeId === "cp-node-9" && n.connected), { timeoutMs: 5_000, what: "the rogue in the view" });
    const before = await snapshot(h);
    const err = (await admin.recoverSplitBrain({ ...who, strategy: RecoveryStrategy.PROMOTE_LEADER, targetNode: "cp-node-9" }).catch((e: unknown) => e)) as ConnectError;
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.rawMessage).toMatch(new RegExp(`^precondition not met: cannot confirm cp-node-9 as leader: cp-node-9's lock session pid 4242 does not hold the lock in pg_locks \\(held by pid ${leader.pid} \\(cp-node-1\\)\\)`));
    expect(await snapshot(h)).toEqual(before);
    expect(leader.role).toBe("leader");
  });

  it("when the audit log cannot be written, a recovery is refused before it acts", async () => {
    const notADir = path.join(scratch, "audit-is-a-file");
    await writeFile(notADir, "not a directory\n");
    const { h, leader, admin } = await splitWithRogue(notADir);
    const before = await snapshot(h);
    const commandsBefore = [leader.commands.length, h.agents[1]!.commands.length];
    for (const req of [
      { strategy: RecoveryStrategy.PROMOTE_LEADER, targetNode: "cp-node-1" },
      { strategy: RecoveryStrategy.MANUAL_RECONCILE, targetNode: "" },
    ]) {
      const err = (await admin.recoverSplitBrain({ ...who, ...req }).catch((e: unknown) => e)) as ConnectError;
      expect(err).toBeInstanceOf(ConnectError);
      expect(err.code).toBe(Code.FailedPrecondition);
      expect(err.rawMessage).toMatch(/^precondition not met: the audit log cannot be written \(.+\): recovery refused before acting; nothing was changed$/);
    }
    expect(await snapshot(h)).toEqual(before);
    expect(leader.role).toBe("leader");
    expect(leader.commands.slice(commandsBefore[0])).toEqual([]);
    expect(h.agents[1]!.commands.slice(commandsBefore[1])).toEqual([]);
  });
});

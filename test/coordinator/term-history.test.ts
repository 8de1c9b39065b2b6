import { describe, expect, it } from "vitest";
import { AuditType, type AuditEvent } from "../../coordinator/audit/audit-event.js";
import { termHistory } from "../../coordinator/audit/term-history.js";
import type { EpochRow } from "../../db/leadership.js";

const t0 = Date.parse("2026-03-18T10:00:00Z");
const at = (s: number) => new Date(t0 + s * 1000);

function term(epoch: number, holderId: string, from: number, to?: number, endReason?: string): EpochRow {
  return { epoch, holderId, acquiredAt: at(from), resignedAt: to === undefined ? undefined : at(to), endReason };
}

let ids = 0;
function event(s: number, type: string, fields: Partial<AuditEvent>): AuditEvent {
  return {
    id: String(++ids), time: at(s).toISOString(), category: "ha", type, operator: "system", reason: "", request_id: "", caller: "",
    node_id: "", epoch: 0, cluster_id: "default", message: "", evidence: {}, ...fields,
  };
}

const who = (t: { openedBy?: { type: string; operator: string; reason: string }; endedBy?: { type: string; operator: string; reason: string } }) => [
  t.openedBy ? `${t.openedBy.type} ${t.openedBy.operator}: ${t.openedBy.reason}` : "-",
  t.endedBy ? `${t.endedBy.type} ${t.endedBy.operator}: ${t.endedBy.reason}` : "-",
];

describe("ha history: each term credited to the action that opened it and the action that ended it", () => {
  it("a planned failover ends the old term and opens the new one, with its operator and reason", () => {
    const rows = [term(8, "cp-node-2", 300), term(7, "cp-node-1", 0, 300, "resigned")];
    const events = [
      event(301, AuditType.FailoverCompleted, {
        operator: "alice", reason: "planned maintenance", node_id: "cp-node-2", epoch: 8,
        evidence: { previous_holder: "cp-node-1", previous_epoch: 7, new_holder: "cp-node-2", new_epoch: 8 },
      }),
    ];
    expect(termHistory(rows, events).map(who)).toEqual([
      ["ha.failover.completed alice: planned maintenance", "-"],
      ["-", "ha.failover.completed alice: planned maintenance"],
    ]);
  });

  it("a later promote-leader that only confirmed a surviving term is not credited with opening it", () => {
    const rows = [term(9, "cp-node-2", 100)];
    const events = [
      event(101, AuditType.FailoverAutomatic, { node_id: "cp-node-2", epoch: 9, reason: "the lock is free: order cp-node-2 to campaign above epoch 8" }),
      event(900, AuditType.SplitBrainRecovered, {
        operator: "bob", reason: "nothing wrong, just checking", node_id: "cp-node-2", epoch: 9,
        evidence: { strategy: "promote-leader", resigned_nodes: [], cleared: [], new_term: false },
      }),
    ];
    expect(termHistory(rows, events).map(who)).toEqual([["ha.failover.automatic system: the lock is free: order cp-node-2 to campaign above epoch 8", "-"]]);
  });

  it("promote-leader that takes a new term opens it, and ends the stale claimant's term it closed", () => {
    const rows = [term(11, "cp-node-2", 500), term(10, "cp-node-1", 200, 499, "superseded")];
    const events = [
      event(501, AuditType.SplitBrainRecovered, {
        operator: "carol", reason: "cp-node-1 stale", node_id: "cp-node-2", epoch: 11,
        evidence: { strategy: "promote-leader", resigned_nodes: ["cp-node-1"], cleared: ["closed epoch 10 of cp-node-1"], new_term: true },
      }),
    ];
    expect(termHistory(rows, events).map(who)).toEqual([
      ["ha.split_brain.recovered carol: cp-node-1 stale", "-"],
      ["-", "ha.split_brain.recovered carol: cp-node-1 stale"],
    ]);
  });

  it("a hung leader's terminated session ends its term (not opens it); the successor's acquisition opens the next", () => {
    const rows = [term(13, "cp-node-3", 62), term(12, "cp-node-1", 0, 61, "superseded")];
    const events = [
      event(61, AuditType.FailoverAutomatic, { node_id: "cp-node-1", epoch: 12, reason: "leader cp-node-1 (epoch 12) is hung", evidence: { pids: [4242] } }),
      event(61, AuditType.FailoverAutomatic, { node_id: "cp-node-3", reason: "order cp-node-3", evidence: { cause: "leader_hung", epoch_floor: 12 } }),
      event(62, AuditType.FailoverAutomatic, { node_id: "cp-node-3", epoch: 13, reason: "order cp-node-3", evidence: { cause: "leader_hung", epoch_floor: 12 } }),
    ];
    expect(termHistory(rows, events).map(who)).toEqual([
      ["ha.failover.automatic system: order cp-node-3", "-"],
      ["-", "ha.failover.automatic system: leader cp-node-1 (epoch 12) is hung"],
    ]);
  });

  it("manual-reconcile ends the term it resigned; the failover that follows opens the next", () => {
    const rows = [term(15, "cp-node-3", 700), term(14, "cp-node-1", 100, 600, "resigned")];
    const events = [
      event(600, AuditType.SplitBrainRecovered, { operator: "dave", reason: "inspect first", evidence: { strategy: "manual-reconcile", resigned_nodes: ["cp-node-1"], cleared: [] } }),
      event(700, AuditType.FailoverCompleted, {
        operator: "dave", reason: "post-reconcile: cp-node-3 chosen", node_id: "cp-node-3", epoch: 15, evidence: { previous_holder: "", previous_epoch: 14 },
      }),
    ];
    expect(termHistory(rows, events).map(who)).toEqual([
      ["ha.failover.completed dave: post-reconcile: cp-node-3 chosen", "-"],
      ["-", "ha.split_brain.recovered dave: inspect first"],
    ]);
  });

  it("a term taken and given up without any recorded action names no action", () => {
    expect(termHistory([term(3, "cp-node-1", 0, 50, "resigned")], []).map(who)).toEqual([["-", "-"]]);
  });
});

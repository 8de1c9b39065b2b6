// Hand-made chaos histories for the checker's tests: a calm run that breaks
// nothing, which each test then changes in one way.

import type { ChaosHistory, DatabaseSnapshot, EpochRowRecord, ReadySample } from "../../chaos/history.js";

export const T0 = Date.parse("2026-01-01T00:00:00Z");
const iso = (ms: number) => new Date(ms).toISOString();

export function epochRow(epoch: number, holderId: string, fromMs: number, toMs: number | null): EpochRowRecord {
  return { epoch, holderId, acquiredAt: iso(T0 + fromMs), resignedAt: toMs === null ? null : iso(T0 + toMs), endReason: toMs === null ? null : "resigned" };
}

/** Two terms (cp-node-1 then cp-node-2), one write each, audited, sampled, converged. */
export function calmHistory(): ChaosHistory {
  const epochs = [epochRow(1, "cp-node-1", 0, 10_000), epochRow(2, "cp-node-2", 12_000, null)];
  const writes = [
    { id: "w1", nodeId: "cp-node-1", epoch: 1, commitUs: (T0 + 5_000) * 1000 },
    { id: "w2", nodeId: "cp-node-2", epoch: 2, commitUs: (T0 + 15_000) * 1000 },
  ];
  const primary: DatabaseSnapshot = { server: "primary", authoritative: true, timeline: 1, readable: true, epochs, writes };
  const standby: DatabaseSnapshot = { server: "standby1", authoritative: false, timeline: 1, readable: true, epochs: [...epochs], writes: [...writes] };
  const samples: ReadySample[] = [];
  // Every 100 ms from 0 to 30 s: cp-node-1 ready until 10 s, nobody until 12 s, cp-node-2 after.
  for (let tick = 0; tick <= 300; tick++) {
    const t = T0 + tick * 100;
    for (const nodeId of ["cp-node-1", "cp-node-2", "cp-node-3"]) {
      const ready = (nodeId === "cp-node-1" && tick < 100) || (nodeId === "cp-node-2" && tick >= 120);
      samples.push({ nodeId, tick, sentAt: t, receivedAt: t + 5, ready, epoch: nodeId === "cp-node-2" && tick >= 120 ? 2 : 1 });
    }
  }
  return {
    seed: 1,
    durationMs: 20_000,
    nodes: ["cp-node-1", "cp-node-2", "cp-node-3"],
    faultKinds: ["kill-leader"],
    slowWritesMs: 0,
    schedule: [],
    startedAt: T0,
    faultsStartedAt: T0 + 1_000,
    faultsEndedAt: T0 + 11_000,
    endedAt: T0 + 30_000,
    convergenceBoundMs: 12_700,
    faults: [{ index: 0, kind: "kill-leader", startedAt: T0 + 9_900, endedAt: T0 + 11_000, target: "cp-node-1", detail: "SIGKILL", injected: true }],
    writes: [
      { id: "w1", nodeId: "cp-node-1", epoch: 1, server: "primary", startedAt: T0 + 4_990, endedAt: T0 + 5_010, outcome: "ack" },
      { id: "w2", nodeId: "cp-node-2", epoch: 2, server: "primary", startedAt: T0 + 14_990, endedAt: T0 + 15_010, outcome: "ack" },
      { id: "w3", nodeId: "cp-node-1", epoch: 1, server: "primary", startedAt: T0 + 12_500, endedAt: T0 + 12_510, outcome: "stale" },
    ],
    samples,
    databases: [primary, standby],
    audit: [
      { time: iso(T0 + 100), type: "ha.leader.changed", node_id: "cp-node-1", epoch: 1, message: "cp-node-1 holds epoch 1", evidence: {} },
      { time: iso(T0 + 12_100), type: "ha.leader.changed", node_id: "cp-node-2", epoch: 2, message: "cp-node-2 holds epoch 2", evidence: {} },
    ],
    blindWindows: [],
    hostile: [],
    promotions: [],
    notes: [],
  };
}

// The invariants, checked over a recorded history. Pure: the same history
// gives the same violations, so each check is tested on hand-made histories
// (test/chaos/checker.test.ts). Every violation carries its evidence.

import type { ChaosHistory, DatabaseSnapshot, ReadySample } from "./history.js";

export type InvariantId = "I1" | "I2" | "I3" | "I4" | "I5" | "I6" | "H1";

export const INVARIANTS: Record<InvariantId, string> = {
  I1: "epochs rise by exactly one with one holder each on the authoritative database, and no epoch is held on two databases",
  I2: "no write fenced with epoch e commits after a write of a later epoch commits, on any database",
  I3: "no acknowledged fenced write is missing from the authoritative database (except RPO of an async promotion)",
  I4: "at no sampled instant do two nodes both answer Write-Ready",
  I5: "after the faults stop, exactly one Write-Ready leader within the bound, and it stays",
  I6: "every leader change in the database has its audit event, and no audit event claims one that did not happen",
  H1: "hostile clients are refused or ignored: no forged epoch reaches a database, the audit or an agent",
};

export interface Violation {
  readonly invariant: InvariantId;
  readonly message: string;
  readonly evidence: unknown;
}

export interface CheckResult {
  readonly violations: Violation[];
  /** Acknowledged writes lost with an async standby's promotion (reported, not a violation). */
  readonly lostToRpo: number;
  /** When I5 was met: ms after the faults stopped until exactly one Write-Ready leader. */
  readonly convergedAfterMs: number | undefined;
}

/** Audit event types that record a new term (the leader change itself, or the action that made it). */
const TERM_EVENTS = new Set(["ha.leader.changed", "ha.failover.completed", "ha.failover.automatic", "ha.split_brain.recovered"]);

export function checkHistory(h: ChaosHistory): CheckResult {
  const violations: Violation[] = [];
  const authoritative = h.databases.find((d) => d.authoritative);
  if (!authoritative || !authoritative.readable) {
    violations.push({ invariant: "I1", message: "the authoritative database could not be read after the run", evidence: authoritative?.error ?? "no authoritative database" });
  }
  violations.push(...checkEpochs(h, authoritative));
  violations.push(...checkCommitOrder(h.databases));
  const rpo = checkAcknowledged(h, authoritative);
  violations.push(...rpo.violations);
  violations.push(...checkSingleWriteReady(h.samples));
  const convergence = checkConvergence(h);
  violations.push(...convergence.violations);
  violations.push(...checkAudit(h, authoritative));
  violations.push(...checkHostile(h));
  return { violations, lostToRpo: rpo.lost, convergedAfterMs: convergence.afterMs };
}

/** I1 */
export function checkEpochs(h: ChaosHistory, authoritative: DatabaseSnapshot | undefined): Violation[] {
  const out: Violation[] = [];
  if (authoritative?.readable) {
    const rows = authoritative.epochs;
    for (let i = 1; i < rows.length; i++) {
      const prev = rows[i - 1]!;
      const row = rows[i]!;
      if (row.epoch === prev.epoch + 1) continue;
      // The first term on a promoted server opens above every epoch seen anywhere, by design (docs/database-failover.md).
      const acquired = Date.parse(row.acquiredAt);
      const afterPromotion = h.promotions.some((p) => acquired >= p.at && Date.parse(prev.acquiredAt) <= p.at + 60_000);
      if (afterPromotion && row.epoch > prev.epoch) continue;
      out.push({ invariant: "I1", message: `on ${authoritative.server}, epoch ${row.epoch} follows epoch ${prev.epoch}`, evidence: { previous: prev, next: row } });
    }
    for (const row of rows) {
      if (!row.holderId) out.push({ invariant: "I1", message: `on ${authoritative.server}, epoch ${row.epoch} has no holder`, evidence: row });
    }
  }
  // The same epoch on two servers must be one term replicated, never two terms.
  const readable = h.databases.filter((d) => d.readable);
  for (let i = 0; i < readable.length; i++) {
    for (let j = i + 1; j < readable.length; j++) {
      const a = readable[i]!;
      const b = readable[j]!;
      const byEpoch = new Map(b.epochs.map((r) => [r.epoch, r]));
      for (const ra of a.epochs) {
        const rb = byEpoch.get(ra.epoch);
        if (!rb) continue;
        if (ra.holderId !== rb.holderId || ra.acquiredAt !== rb.acquiredAt) {
          out.push({ invariant: "I1", message: `epoch ${ra.epoch} is held on ${a.server} by ${ra.holderId} and on ${b.server} by ${rb.holderId}`, evidence: { [a.server]: ra, [b.server]: rb } });
        }
      }
    }
  }
  // No term may open on a server after a promotion left it behind.
  for (const p of h.promotions) {
    const zombie = h.databases.find((d) => d.server === p.from && !d.authoritative);
    for (const row of zombie?.epochs ?? []) {
      if (Date.parse(row.acquiredAt) > p.at) {
        out.push({ invariant: "I1", message: `epoch ${row.epoch} was opened by ${row.holderId} on ${p.from} after it was superseded by the promotion of ${p.to}`, evidence: { row, promotion: p } });
      }
    }
  }
  return out;
}

/** I2: in commit order, the epoch of fenced writes never goes down. */
export function checkCommitOrder(databases: readonly DatabaseSnapshot[]): Violation[] {
  const out: Violation[] = [];
  for (const db of databases) {
    const writes = [...db.writes].sort((a, b) => a.commitUs - b.commitUs || a.epoch - b.epoch);
    let highest: (typeof writes)[number] | undefined;
    let reported = 0;
    for (const w of writes) {
      if (highest && w.epoch < highest.epoch && w.commitUs > highest.commitUs) {
        if (reported++ < 5) {
          out.push({
            invariant: "I2",
            message: `on ${db.server}, write ${w.id} fenced with epoch ${w.epoch} committed ${w.commitUs - highest.commitUs}µs after write ${highest.id} of epoch ${highest.epoch}`,
            evidence: { late: w, earlier: highest },
          });
        }
      }
      if (!highest || w.epoch > highest.epoch) highest = w;
    }
    if (reported > 5) out.push({ invariant: "I2", message: `on ${db.server}, ${reported - 5} more writes committed after a write of a later epoch`, evidence: null });
  }
  return out;
}

/** I3 */
export function checkAcknowledged(h: ChaosHistory, authoritative: DatabaseSnapshot | undefined): { violations: Violation[]; lost: number } {
  if (!authoritative?.readable) return { violations: [], lost: 0 };
  const present = new Set(authoritative.writes.map((w) => w.id));
  const missing = h.writes.filter((w) => w.outcome === "ack" && !present.has(w.id));
  let lost = 0;
  const violations: Violation[] = [];
  for (const w of missing) {
    const asyncPromotion = h.promotions.find((p) => !p.standbyWasSync && w.endedAt <= p.at);
    if (asyncPromotion) {
      lost++;
      continue;
    }
    violations.push({ invariant: "I3", message: `acknowledged write ${w.id} (epoch ${w.epoch}, to ${w.server}) is missing from ${authoritative.server}`, evidence: w });
  }
  return { violations, lost };
}

/** I4: two Write-Ready answers from different nodes whose request windows overlap. */
export function checkSingleWriteReady(samples: readonly ReadySample[]): Violation[] {
  const ready = samples.filter((s) => s.ready).sort((a, b) => a.sentAt - b.sentAt);
  const out: Violation[] = [];
  for (let i = 0; i < ready.length; i++) {
    const a = ready[i]!;
    for (let j = i + 1; j < ready.length && ready[j]!.sentAt <= a.receivedAt; j++) {
      const b = ready[j]!;
      if (b.nodeId === a.nodeId) continue;
      out.push({
        invariant: "I4",
        message: `${a.nodeId} (epoch ${a.epoch}) and ${b.nodeId} (epoch ${b.epoch}) both answered Write-Ready at ${new Date(b.sentAt).toISOString()}`,
        evidence: { a, b },
      });
      if (out.length >= 10) return out;
    }
  }
  return out;
}

/** I5 */
export function checkConvergence(h: ChaosHistory): { violations: Violation[]; afterMs: number | undefined } {
  const after = h.samples.filter((s) => s.sentAt >= h.faultsEndedAt);
  const ticks = new Map<number, ReadySample[]>();
  for (const s of after) ticks.set(s.tick, [...(ticks.get(s.tick) ?? []), s]);
  // Only ticks where every node answered say who is and is not Write-Ready.
  const full = [...ticks.entries()].filter(([, ss]) => ss.length === h.nodes.length).sort((a, b) => a[0] - b[0]);
  const firstOne = full.findIndex(([, ss]) => ss.filter((s) => s.ready).length === 1);
  if (firstOne < 0) {
    return {
      violations: [{ invariant: "I5", message: `no single Write-Ready leader after the faults stopped (${full.length} complete samples over ${((h.endedAt - h.faultsEndedAt) / 1000).toFixed(1)}s)`, evidence: full.slice(-3) }],
      afterMs: undefined,
    };
  }
  const [, convergedSamples] = full[firstOne]!;
  const afterMs = Math.max(0, Math.min(...convergedSamples.map((s) => s.sentAt)) - h.faultsEndedAt);
  const violations: Violation[] = [];
  if (afterMs > h.convergenceBoundMs) {
    violations.push({ invariant: "I5", message: `a single Write-Ready leader only ${afterMs}ms after the faults stopped (bound ${h.convergenceBoundMs}ms)`, evidence: convergedSamples });
  }
  const leader = convergedSamples.find((s) => s.ready)!.nodeId;
  for (const [tick, ss] of full.slice(firstOne + 1)) {
    const ready = ss.filter((s) => s.ready).map((s) => s.nodeId);
    if (ready.length !== 1 || ready[0] !== leader) {
      violations.push({ invariant: "I5", message: `after converging on ${leader}, tick ${tick} found Write-Ready: [${ready.join(", ")}]`, evidence: ss });
      break;
    }
  }
  return { violations, afterMs };
}

/** I6 */
export function checkAudit(h: ChaosHistory, authoritative: DatabaseSnapshot | undefined): Violation[] {
  const out: Violation[] = [];
  const termsAnywhere = new Map<string, true>();
  for (const db of h.databases) for (const r of db.epochs) termsAnywhere.set(`${r.epoch}/${r.holderId}`, true);
  for (const e of h.audit.filter((a) => a.type === "ha.leader.changed")) {
    if (!termsAnywhere.has(`${e.epoch}/${e.node_id}`)) {
      out.push({ invariant: "I6", message: `audit says ${e.node_id} took epoch ${e.epoch} at ${e.time}, but no database has that term`, evidence: e });
    }
  }
  if (!authoritative?.readable) return out;
  const audited = new Set(h.audit.filter((a) => TERM_EVENTS.has(a.type)).map((a) => `${a.epoch}/${a.node_id}`));
  for (const row of authoritative.epochs) {
    if (audited.has(`${row.epoch}/${row.holderId}`)) continue;
    // No excuse for a term that lived while no coordinator could look (h.blindWindows):
    // the coordinator that acts next records it late, from leader_epochs.
    out.push({ invariant: "I6", message: `epoch ${row.epoch} of ${row.holderId} (${row.acquiredAt} – ${row.resignedAt ?? "open"}) has no audit event`, evidence: row });
  }
  return out;
}

/** H1 */
export function checkHostile(h: ChaosHistory): Violation[] {
  const out: Violation[] = [];
  for (const x of h.hostile) {
    if (!x.refused) out.push({ invariant: "H1", message: `${x.kind} was not refused: ${x.detail}`, evidence: x });
    const impostor = x.impostor;
    if (impostor !== undefined) {
      const led = h.databases.flatMap((d) => d.epochs.filter((r) => r.holderId === impostor).map((r) => ({ server: d.server, ...r })));
      const crowned = h.audit.filter((a) => a.node_id === impostor && TERM_EVENTS.has(a.type));
      if (led.length + crowned.length > 0) {
        out.push({ invariant: "H1", message: `${impostor}, which only ever sent forged reports, was made leader`, evidence: { databases: led, audit: crowned } });
      }
    }
    const claimed = x.claimedEpoch;
    if (claimed === undefined) continue;
    const inDb = h.databases.flatMap((d) => d.epochs.filter((r) => r.epoch >= claimed).map((r) => ({ server: d.server, ...r })));
    const inAudit = h.audit.filter((a) => a.epoch >= claimed);
    const inSamples = h.samples.filter((s) => s.epoch >= claimed).slice(0, 3);
    if (inDb.length + inAudit.length + inSamples.length > 0) {
      out.push({ invariant: "H1", message: `the epoch ${claimed} claimed by a ${x.kind} was believed`, evidence: { databases: inDb, audit: inAudit, samples: inSamples } });
    }
  }
  return out;
}

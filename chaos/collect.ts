// After the run: what each database server holds (terms, fenced writes with
// their commit timestamps) and what the audit log says.

import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import type { PgServer } from "../pgcluster/index.js";
import type { AuditRecord, CommittedWrite, DatabaseSnapshot, EpochRowRecord } from "./history.js";
import { WRITES_TABLE } from "./workload.js";

export async function snapshotServer(server: PgServer, authoritative: boolean): Promise<DatabaseSnapshot> {
  const base = { server: server.name, authoritative };
  try {
    if (!server.isRunning()) await server.start();
    const [tl] = await server.query<{ timeline: number }>("SELECT timeline_id AS timeline FROM pg_control_checkpoint()");
    const epochs = (
      await server.query<{ epoch: string; holder_id: string; acquired_at: Date; resigned_at: Date | null; end_reason: string | null }>(
        "SELECT epoch::text, holder_id, acquired_at, resigned_at, end_reason FROM leader_epochs ORDER BY epoch",
      )
    ).map(
      (r): EpochRowRecord => ({
        epoch: Number(r.epoch),
        holderId: r.holder_id,
        acquiredAt: r.acquired_at.toISOString(),
        resignedAt: r.resigned_at ? r.resigned_at.toISOString() : null,
        endReason: r.end_reason,
      }),
    );
    const writes = (
      await server.query<{ id: string; node_id: string; epoch: string; commit_us: string | null }>(
        `SELECT id, node_id, epoch::text, (extract(epoch FROM pg_xact_commit_timestamp(xmin)) * 1000000)::bigint::text AS commit_us FROM ${WRITES_TABLE}`,
      )
    ).map((r): CommittedWrite => ({ id: r.id, nodeId: r.node_id, epoch: Number(r.epoch), commitUs: Number(r.commit_us ?? 0) }));
    return { ...base, timeline: tl?.timeline ?? null, readable: true, epochs, writes };
  } catch (err) {
    return { ...base, timeline: null, readable: false, error: (err as Error).message, epochs: [], writes: [] };
  }
}

export function readAudit(auditDir: string): AuditRecord[] {
  const out: AuditRecord[] = [];
  let files: string[] = [];
  try {
    files = readdirSync(auditDir).filter((f) => f.endsWith(".jsonl")).sort();
  } catch {
    return out;
  }
  for (const f of files) {
    for (const line of readFileSync(path.join(auditDir, f), "utf8").split("\n")) {
      if (!line.trim()) continue;
      try {
        const e = JSON.parse(line) as AuditRecord;
        out.push({ time: e.time, type: e.type, node_id: e.node_id, epoch: Number(e.epoch), message: e.message, evidence: e.evidence ?? {} });
      } catch {
        // a torn last line of a killed coordinator
      }
    }
  }
  return out;
}

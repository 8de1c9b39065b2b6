import { describe, expect, it } from "vitest";
import { filterAuditEvents, parseLine } from "../../coordinator/audit/audit-reader.js";
import { auditText, type AuditRecord } from "../../cli/output/audit.js";

const line = (o: Record<string, unknown>) => JSON.stringify(o);

function event(type: string, time: string, extra: Partial<AuditRecord> = {}): AuditRecord {
  return {
    id: `${type}@${time}`, time, category: type.split(".")[0] ?? "", type, operator: "", reason: "", request_id: "", caller: "",
    node_id: "", epoch: 0, cluster_id: "", message: "", evidence: {}, ...extra,
  };
}

describe("reading the coordinator's audit lines", () => {
  it("understands pino's epoch-millisecond time and msg field, takes the category from the type, and skips log lines", () => {
    const first = parseLine(line({ type: "ha.failover.completed", time: "2026-03-18T10:05:00.120Z", category: "ha", operator: "alice", epoch: 8 }));
    expect(first).toMatchObject({ operator: "alice", epoch: 8, evidence: {} });
    expect(parseLine(line({ type: "ha.split_brain.detected", time: 1773828000000, msg: "two lock holders" }))).toMatchObject({
      time: "2026-03-18T10:00:00.000Z",
      message: "two lock holders",
      category: "ha",
    });
    expect(parseLine(line({ level: 30, msg: "coordinator started" }))).toBeUndefined();
    expect(parseLine("{not json")).toBe("not-json");
  });
});

describe("selecting audit events", () => {
  const events = [
    event("ha.failover.completed", "2026-03-18T10:05:00.000Z"),
    event("ha.split_brain.detected", "2026-03-18T11:00:00.000Z"),
    event("app.deploy", "2026-03-18T09:00:00.000Z"),
    event("ha.split_brain.recovered", "2026-03-18T11:10:00.000Z"),
    event("ha.failover.requested", "2026-03-18T10:04:59.000Z"),
  ];
  it.each([
    { name: "newest N of a category, oldest first", filter: { category: "ha", limit: 2 }, want: ["ha.split_brain.detected", "ha.split_brain.recovered"] },
    { name: "everything sorted by time", filter: { limit: 100 }, want: ["app.deploy", "ha.failover.requested", "ha.failover.completed", "ha.split_brain.detected", "ha.split_brain.recovered"] },
    { name: "an exact type", filter: { type: "ha.failover.completed", limit: 10 }, want: ["ha.failover.completed"] },
    { name: "since a time, inclusive", filter: { since: new Date("2026-03-18T11:00:00Z"), limit: 10 }, want: ["ha.split_brain.detected", "ha.split_brain.recovered"] },
    { name: "nothing for an unknown category", filter: { category: "db", limit: 10 }, want: [] },
  ])("$name", ({ filter, want }) => {
    expect(filterAuditEvents(events, filter).map((e) => e.type)).toEqual(want);
  });
});

describe("audit query text", () => {
  it("prints one line per event: time, type, operator, node, epoch, then what happened and why", () => {
    expect(
      auditText([
        event("ha.failover.completed", "2026-03-18T10:05:00.900Z", {
          operator: "alice", node_id: "cp-node-1", epoch: 8, reason: "planned maintenance", message: "cp-node-2 leads epoch 8",
        }),
        event("ha.split_brain.detected", "2026-03-18T11:00:00.000Z", { operator: "system", message: "two lock holders" }),
      ]),
    ).toEqual([
      "TIME                  TYPE                     OPERATOR  NODE       EPOCH  DETAILS",
      "2026-03-18T10:05:00Z  ha.failover.completed    alice     cp-node-1  8      cp-node-2 leads epoch 8 (reason: planned maintenance)",
      "2026-03-18T11:00:00Z  ha.split_brain.detected  system    -          -      two lock holders",
    ]);
  });
});

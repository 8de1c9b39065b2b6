import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { AgentReportSchema } from "../../gen/autonomy/ha/v1/agent_pb.js";
import { validateReport } from "../../coordinator/live/report-validation.js";
import { MAX_EPOCH_JUMP } from "../../db/leadership.js";

const report = (fields: { epoch?: bigint; highestEpochSeen?: bigint; observed?: bigint }) =>
  create(AgentReportSchema, {
    clusterId: "default",
    epoch: fields.epoch ?? 0n,
    highestEpochSeen: fields.highestEpochSeen ?? 0n,
    observedLeader: { holderId: "cp-node-1", epoch: fields.observed ?? 0n },
  });

describe("report epochs are bounded by the epoch confirmed in the lock database", () => {
  const confirmed = 7;
  const bound = confirmed + MAX_EPOCH_JUMP;

  it.each([
    ["epoch", { epoch: BigInt(bound + 1) }, `epoch ${bound + 1} is more than ${MAX_EPOCH_JUMP} above epoch 7, the highest epoch confirmed in the lock database (bound ${bound})`],
    ["highest_epoch_seen", { highestEpochSeen: 2n ** 53n - 1n }, `highest_epoch_seen 9007199254740991 is more than ${MAX_EPOCH_JUMP} above epoch 7, the highest epoch confirmed in the lock database (bound ${bound})`],
    ["observed_leader.epoch", { observed: BigInt(bound + 1) }, `observed_leader.epoch ${bound + 1} is more than ${MAX_EPOCH_JUMP} above epoch 7`],
    ["a uint64 beyond bigint", { highestEpochSeen: 2n ** 64n - 1n }, "highest_epoch_seen 18446744073709551615 is out of range (above 9223372036854775807, the largest bigint)"],
  ] as const)("refuses %s, naming the field, the value and the bound", (_name, fields, message) => {
    expect(() => validateReport("cp-node-6", report(fields), "default", confirmed)).toThrow(expect.objectContaining({ code: "invalid_argument", message: expect.stringContaining(`report from cp-node-6 rejected: ${message}`) }));
  });

  it("accepts epochs up to the bound: a new term is reported before the coordinator reads it", () => {
    expect(() => validateReport("cp-node-2", report({ epoch: BigInt(bound), highestEpochSeen: BigInt(bound), observed: BigInt(confirmed + 1) }), "default", confirmed)).not.toThrow();
  });

  it("without a confirmed epoch, only the ranges apply", () => {
    expect(() => validateReport("cp-node-2", report({ highestEpochSeen: 5000n }), "default")).not.toThrow();
    expect(() => validateReport("cp-node-2", report({ highestEpochSeen: 2n ** 60n }), "default")).toThrow(/out of range/);
  });
});

import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../core/clock.js";
import { startPgCluster, type PgCluster } from "../../pgcluster/index.js";
import { Harness } from "./support/harness.js";

describe("the coordinator checks each agent's lease against its failure timeout", () => {
  let pg: PgCluster;
  let h: Harness | undefined;
  beforeAll(async () => {
    pg = await startPgCluster({ standbys: 0 });
  });
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });
  afterAll(async () => {
    await pg?.close();
  });

  it("a node whose lease is not below --failure-timeout is audited once, as a finding naming both values", async () => {
    h = await new Harness(pg.primary.url(), { failureTimeoutMs: 2_000 }).start();
    await h.agent("cp-node-1", { leaseMs: 1_500 });
    await h.agent("cp-node-2", { leaseMs: 5_000 });
    const [finding] = await waitFor(async () => {
      const found = await h!.audit("ha.node.lease_too_long");
      return found.length > 0 ? found : undefined;
    }, { timeoutMs: 5_000, what: "the lease finding" });
    expect(finding).toMatchObject({ node_id: "cp-node-2", evidence: { lease_ms: 5_000, failure_timeout_ms: 2_000 } });
    expect(finding!.message).toMatch(/--lease 5000ms, not below the coordinator's --failure-timeout 2000ms/);
    // Reports keep coming; the finding is not repeated, and the node with a short lease has none.
    const a = h.agents[1]!;
    a.overrides = { priority: 7 };
    await a.report();
    await waitFor(async () => (await h!.admin().getStatus({})).nodes.some((n) => n.nodeId === "cp-node-2" && n.priority === 7), { timeoutMs: 5_000, what: "a later report" });
    expect((await h.audit("ha.node.lease_too_long")).map((e) => e.node_id)).toEqual(["cp-node-2"]);
  });
});

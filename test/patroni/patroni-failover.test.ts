import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProductOnPatroni, type PrimaryMove } from "./product-on-patroni.js";

/*
 * Our product on top of a real PostgreSQL HA engine: Patroni (with etcd)
 * manages three PostgreSQL members; three agents (with and without a
 * coordinator) take the multi-host URL of all three and must follow
 * whichever one Patroni makes primary. Each node's application does fenced
 * writes whenever its agent is Write-Ready. Patroni decides which database is
 * primary; we decide which node may write, and the epoch fence must hold
 * across Patroni's moves.
 */

function describeMove(m: PrimaryMove): string {
  const gap = m.lastBefore ? `${(m.firstAfter.committedAt - m.lastBefore.committedAt).toFixed(0)} ms` : "?";
  return (
    `${m.kind} ${m.from} → ${m.to}: Patroni reported ${m.to} leading after ${(m.patroniReportedAt - m.startedAt).toFixed(0)} ms; ` +
    `first fenced write on ${m.to} at epoch ${m.firstAfter.epoch} (before: ${m.epochBefore}) after ${(m.firstAfter.committedAt - m.startedAt).toFixed(0)} ms; ` +
    `write gap ${gap}; acknowledged writes lost ${m.lostCommits}`
  );
}

describe.each([
  { setup: "a coordinator and three agents", coordinator: true },
  { setup: "three agents without a coordinator", coordinator: false },
])("$setup on a Patroni-managed PostgreSQL cluster", ({ coordinator }) => {
  let product: ProductOnPatroni;

  beforeAll(async () => {
    product = await ProductOnPatroni.start({ coordinator });
  }, 150_000);

  afterAll(async () => {
    await product?.close();
  }, 60_000);

  function expectOneWriterAndRisingEpochs(): void {
    expect(product.overlaps(), "samples in which two agents were Write-Ready at once").toEqual([]);
    expect(product.epochDrops(), "epochs that fell").toEqual([]);
  }

  it("starts with one Write-Ready leader, its fenced writes committing on Patroni's primary", async () => {
    const primary = await product.patroni.waitForLeader();
    const leader = await product.steadyLeader();
    const first = product.firstCommitOn(primary, 0);
    expect(first?.epoch).toBe(leader.epoch);
    expectOneWriterAndRisingEpochs();
  }, 90_000);

  it("Patroni's primary killed (Patroni and postmaster): Patroni promotes a replica, the agents follow, one leader above every earlier epoch, writes resume", async () => {
    const move = await product.crashPrimary();
    process.stdout.write(`patroni ${describeMove(move)}\n`);
    expect(move.to).not.toBe(move.from);
    expect(move.firstAfter.epoch, "the first fenced write on the promoted server carries a higher epoch").toBeGreaterThan(move.epochBefore);
    const leader = await product.steadyLeader();
    expect(leader.epoch).toBeGreaterThan(move.epochBefore);
    expectOneWriterAndRisingEpochs();

    // The crashed member rejoins as a replica; the switchover below needs it.
    await product.rejoin(move.from);
    expect(await product.patroni.leaderName()).toBe(move.to);
    await product.steadyLeader();
    expectOneWriterAndRisingEpochs();
    // One move of the primary, one new term: the first leader on the promoted server keeps leading.
    // (The old term may still show in a sample or commit taken in the instant of the kill.)
    const newTerms = product.termsSince(move.startedAt).filter((e) => e > move.epochBefore);
    expect(newTerms, `terms Write-Ready or written since the kill\n${product.leadershipLog(move.startedAt)}`).toEqual([move.firstAfter.epoch]);
  }, 180_000);

  it("patronictl switchover: the agents follow the new primary, one leader above every earlier epoch, writes resume; the write gap is printed", async () => {
    const move = await product.switchover();
    process.stdout.write(`patroni ${describeMove(move)}\n`);
    expect(move.patronictl).toContain(`Successfully switched over to "${move.to}"`);
    expect(move.firstAfter.epoch).toBeGreaterThan(move.epochBefore);
    expect(move.lastBefore, "fenced writes were committing on the old primary before the switchover").toBeDefined();
    expect(move.firstAfter.committedAt).toBeGreaterThan(move.lastBefore!.committedAt);
    const leader = await product.steadyLeader();
    expect(leader.epoch).toBeGreaterThan(move.epochBefore);
    expectOneWriterAndRisingEpochs();
  }, 180_000);

  it("over the whole run: never two Write-Ready agents at one instant, epochs only rose, in the sampled health and in the table", async () => {
    await product.stopWorkload();
    expect(product.sampler!.samples.length).toBeGreaterThan(100);
    expectOneWriterAndRisingEpochs();
    // The rows the primary kept, in insert order (the sequence only moves
    // forward across a promotion), never go back to a lower epoch.
    const primary = await product.patroni.waitForLeader();
    const rows = await product.patroni.query<{ id: string; epoch: string; node: string }>(primary.name, "SELECT id, epoch, node FROM fenced_writes ORDER BY id");
    const fell = rows.filter((r, i) => i > 0 && Number(r.epoch) < Number(rows[i - 1]!.epoch)).map((r) => `row ${r.id}: ${r.node} at epoch ${r.epoch}`);
    expect(fell).toEqual([]);
    expect(new Set(rows.map((r) => r.epoch)).size, "a term before the crash, one after it, one after the switchover").toBeGreaterThanOrEqual(3);
    // Two moves of the primary, two new terms: no leader was replaced without a move.
    expect(product.termsSince(0), `terms Write-Ready or written over the whole run\n${product.leadershipLog(0)}`).toHaveLength(3);
  }, 60_000);
});

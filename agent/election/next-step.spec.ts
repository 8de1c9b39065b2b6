import { describe, expect, it } from "vitest";
import type { CommandAction, NodeCommand } from "../../core/model.js";
import { MAX_EPOCH_JUMP } from "../../db/leadership.js";
import type { ElectionState, StandingCampaign } from "./election-state.js";
import { STEP_KINDS, decideCommand, nextStep, type Step, type StepConfig, type StepInputs } from "./next-step.js";
import type { Term } from "./readiness.js";

const NOW = 100_000;
const config: StepConfig = { leaseMs: 1_500, heartbeatIntervalMs: 200, campaignIntervalMs: 100, nofailover: false, successor: false, lockWaitSliceMs: 5_000 };

const term = (confirmedAtMs = NOW - 100): Term => ({ epoch: 7, acquiredAt: new Date(0), confirmedAtMs, heartbeatAt: undefined });
const command = (action: CommandAction, epoch = 7): NodeCommand => ({ commandId: "c-1", epoch, action, reason: "test" });
const standing = (untilMs: number): StandingCampaign => ({ command: command({ kind: "campaign", epochFloor: 7, waitMs: 30_000 }), untilMs, floor: 7, done: () => undefined });

const leader = (confirmedAtMs?: number): ElectionState => ({ kind: "leader", term: term(confirmedAtMs) });
const follower: ElectionState = { kind: "follower" };
const held: ElectionState = { kind: "held" };
const fenced: ElectionState = { kind: "fenced", epoch: 7 };
const campaigning = (untilMs: number): ElectionState => ({ kind: "campaigning", standing: standing(untilMs) });

/** A live session, nothing queued, no coordinator, no quiet period, every timer due now. */
const inputs = (over: Partial<StepInputs> = {}): StepInputs => ({
  sessionAlive: true,
  commandPending: false,
  coordinatorConnected: false,
  quiet: undefined,
  nextHeartbeatMs: NOW,
  nextCampaignMs: NOW,
  lockHolder: "cp-node-1",
  superseded: undefined,
  recordedHold: false,
  ...over,
});

type Case = [name: string, state: ElectionState, inputs: StepInputs, config: StepConfig, expected: Partial<Step>];

const cases: Case[] = [
  // Authority first: nothing else is considered while a term outlived its lease.
  ["a leader paused past its lease fences itself, even with a command queued", leader(NOW - 1_500), inputs({ commandPending: true }), config,
    { kind: "fence", epoch: 7, reason: "lock session unconfirmed for 1500ms (lease 1500ms): fenced" }],
  ["a leader whose lock session died fences itself", leader(), inputs({ sessionAlive: false }), config,
    { kind: "fence", epoch: 7, reason: "lock session lost" }],
  // The manual-reconcile hold recorded in the database: a follower stands by, a leader keeps its term, a command still runs.
  ["a follower stands by while the manual-reconcile hold is recorded", follower, inputs({ recordedHold: true }), config,
    { kind: "held", reason: "manual-reconcile hold recorded in the database: not campaigning until a failover names a node" }],
  ["a --successor stands by too, rather than queueing on the lock", follower, inputs({ recordedHold: true }), { ...config, successor: true }, { kind: "held" }],
  ["a command (a failover naming this node) still runs under the recorded hold", follower, inputs({ recordedHold: true, commandPending: true }), config, { kind: "run_command" }],
  // A superseded server: leave it before anything queued runs, leader or not.
  ["a leader on a superseded server leaves it, even with a command queued", leader(), inputs({ commandPending: true, superseded: "server 1/tl1 is superseded" }), config,
    { kind: "leave_superseded", reason: "server 1/tl1 is superseded" }],
  ["a held follower on a superseded server leaves it too", held, inputs({ superseded: "fenced as superseded" }), config,
    { kind: "leave_superseded" }],
  ["a leader past its lease on a superseded server fences first", leader(NOW - 1_500), inputs({ superseded: "superseded" }), config,
    { kind: "fence", epoch: 7 }],
  ["a leader 1ms inside its lease keeps its term", leader(NOW - 1_499), inputs(), config, { kind: "heartbeat", inMs: 0 }],
  // The lock session.
  ["a fenced node opens a fresh lock session", fenced, inputs({ sessionAlive: false }), config,
    { kind: "connect", reason: "fenced after epoch 7: reconnecting the lock session" }],
  ["a follower without a lock session connects before running a command", follower, inputs({ sessionAlive: false, commandPending: true }), config,
    { kind: "connect", reason: "no lock session" }],
  ["a held node reconnects too (and stays held)", held, inputs({ sessionAlive: false }), config, { kind: "connect" }],
  // Commands come before the node's own business.
  ["a queued command runs before the heartbeat", leader(), inputs({ commandPending: true }), config, { kind: "run_command" }],
  ["a queued command runs before the held node's stand-by", held, inputs({ commandPending: true }), config, { kind: "run_command" }],
  // The leader.
  ["a leader heartbeats when the beat is due", leader(), inputs(), config,
    { kind: "heartbeat", inMs: 0, reason: "leader for epoch 7: heartbeat every 200ms" }],
  ["a leader waits for its next beat", leader(), inputs({ nextHeartbeatMs: NOW + 150 }), config, { kind: "heartbeat", inMs: 150 }],
  // An ordered campaign.
  ["an ordered campaign waits on the lock for what is left of its wait", campaigning(NOW + 20_000), inputs({ coordinatorConnected: true }), config,
    { kind: "ordered_campaign", waitMs: 20_000, reason: "command c-1 ordered a campaign: waiting on the lock above epoch 7" }],
  ["an ordered campaign is served even during the startup grace", campaigning(NOW + 1_000), inputs({ quiet: { untilMs: NOW + 2_000, why: "startup_grace" } }), config,
    { kind: "ordered_campaign", waitMs: 1_000 }],
  ["an ordered campaign whose wait ran out fails, naming the holder", campaigning(NOW), inputs(), config,
    { kind: "ordered_campaign_expired", reason: "lock still held by cp-node-1 when the wait ended" }],
  ["an expired ordered campaign with no known holder", campaigning(NOW - 1), inputs({ lockHolder: undefined }), config,
    { kind: "ordered_campaign_expired", reason: "lock still held by another session when the wait ended" }],
  // Standing by.
  ["a held node never campaigns, not even as --successor", held, inputs(), { ...config, successor: true },
    { kind: "held", inMs: 100, reason: "held by the coordinator: not campaigning until released" }],
  ["a --nofailover node never campaigns on its own", follower, inputs(), { ...config, nofailover: true }, { kind: "nofailover", inMs: 100 }],
  ["in the startup grace a follower leaves the first word to the coordinator", follower, inputs({ quiet: { untilMs: NOW + 1_800, why: "startup_grace" } }), config,
    { kind: "startup_grace", inMs: 1_800, reason: "startup grace: leaving the first word to the coordinator" }],
  ["a --successor waits out the startup grace too", follower, inputs({ quiet: { untilMs: NOW + 50, why: "startup_grace" } }), { ...config, successor: true },
    { kind: "startup_grace", inMs: 100 }],
  ["a node that just resigned stays out so the chosen successor wins", follower, inputs({ quiet: { untilMs: NOW + 900, why: "resign_backoff" } }), config,
    { kind: "resign_backoff", inMs: 900 }],
  ["a held node waits at least the quiet period", held, inputs({ quiet: { untilMs: NOW + 900, why: "resign_backoff" } }), config, { kind: "held", inMs: 900 }],
  ["the grace is over at its deadline", follower, inputs({ quiet: { untilMs: NOW, why: "startup_grace" } }), config, { kind: "lock_wait", waitMs: 5_000 }],
  // Campaigning on its own.
  ["a --successor waits on the lock, one slice at a time", follower, inputs(), { ...config, successor: true },
    { kind: "lock_wait", waitMs: 5_000, reason: "--successor: waiting on the lock" }],
  ["a --successor keeps its place in the queue under a coordinator", follower, inputs({ coordinatorConnected: true }), { ...config, successor: true },
    { kind: "lock_wait", waitMs: 5_000 }],
  ["alone, a follower waits on the lock rather than polling it", follower, inputs(), config,
    { kind: "lock_wait", waitMs: 5_000, reason: "no coordinator connected: waiting on the lock (the first in its queue leads next)" }],
  ["with a coordinator connected, only a 2 s backstop", follower, inputs({ coordinatorConnected: true }), config,
    { kind: "campaign", inMs: 0, intervalMs: 2_000, reason: "coordinator connected: trying a free lock every 2000ms as a backstop" }],
  ["a longer --campaign-interval is kept under a coordinator", follower, inputs({ coordinatorConnected: true }), { ...config, campaignIntervalMs: 5_000 },
    { kind: "campaign", intervalMs: 5_000 }],
  ["the next try waits for its turn", follower, inputs({ coordinatorConnected: true, nextCampaignMs: NOW + 60 }), config, { kind: "campaign", inMs: 60 }],
  ["after a hung leader's session was ended the next try is at once", follower, inputs({ coordinatorConnected: true, nextCampaignMs: 0 }), config, { kind: "campaign", inMs: 0 }],
  ["a fenced node with a live session queues like a follower", fenced, inputs(), config, { kind: "lock_wait" }],
  ["a --nofailover node never queues, coordinator or not", follower, inputs(), { ...config, nofailover: true }, { kind: "nofailover" }],
];

describe("nextStep: one pass of the election loop, as a kind and a reason", () => {
  it.each(cases)("%s", (_name, state, input, cfg, expected) => {
    expect(nextStep(state, input, cfg, NOW)).toMatchObject(expected);
  });

  it("every kind of step is reached by a case above", () => {
    const reached = new Set(cases.map(([, state, input, cfg]) => nextStep(state, input, cfg, NOW).kind));
    expect([...reached].sort()).toEqual([...STEP_KINDS].sort());
  });

  it("a held or nofailover node never takes the lock, whatever the timers say", () => {
    for (const quiet of [undefined, { untilMs: NOW + 5_000, why: "resign_backoff" as const }]) {
      for (const coordinatorConnected of [false, true]) {
        const input = inputs({ quiet, coordinatorConnected, nextCampaignMs: 0 });
        expect(nextStep(held, input, { ...config, successor: true }, NOW).kind).toBe("held");
        expect(nextStep(follower, input, { ...config, nofailover: true, successor: true }, NOW).kind).toBe("nofailover");
      }
    }
  });
});

describe("decideCommand: commands are epoch-guarded against leadership_state", () => {
  it.each([
    ["a command for another epoch is refused, naming both epochs", command({ kind: "resign", hold: false }, 99), 7, leader(),
      { kind: "refuse", epoch: 7, message: "epoch guard: command is for epoch 99, current epoch is 7" }],
    ["a late command for an older term is refused on a follower too", command({ kind: "hold" }, 6), 7, follower,
      { kind: "refuse", epoch: 0, message: "epoch guard: command is for epoch 6, current epoch is 7" }],
    ["resign on a follower is refused", command({ kind: "resign", hold: false }), 7, follower, { kind: "refuse", epoch: 0, message: "not the leader" }],
    ["resign on the leader", command({ kind: "resign", hold: true }), 7, leader(), { kind: "resign", hold: true }],
    ["a campaign floor that is no epoch is refused", command({ kind: "campaign", epochFloor: 1.5, waitMs: 0 }), 7, follower,
      { kind: "refuse", epoch: 0, message: expect.stringMatching(/^campaign refused: epoch_floor 1.5 is not an epoch/) }],
    ["a campaign floor out of reach is refused", command({ kind: "campaign", epochFloor: 8 + MAX_EPOCH_JUMP, waitMs: 0 }), 7, follower,
      { kind: "refuse", epoch: 0, message: `campaign refused: epoch_floor ${8 + MAX_EPOCH_JUMP} is more than ${MAX_EPOCH_JUMP} above epoch 7, the highest epoch confirmed in the lock database` }],
    ["the leader is already leader", command({ kind: "campaign", epochFloor: 7, waitMs: 0 }), 7, leader(), { kind: "already_leader", epoch: 7, floor: 7 }],
    ["a campaign without a wait tries the lock once", command({ kind: "campaign", epochFloor: 7, waitMs: 0 }), 7, held, { kind: "campaign_now", floor: 7 }],
    ["a campaign with a wait queues on the lock", command({ kind: "campaign", epochFloor: 7, waitMs: 30_000 }), 7, follower,
      { kind: "campaign_wait", floor: 7, waitMs: 30_000 }],
    ["hold on the leader resigns first", command({ kind: "hold" }), 7, leader(), { kind: "hold", resign: true }],
    ["hold on a follower only holds", command({ kind: "hold" }), 7, campaigning(NOW), { kind: "hold", resign: false }],
    ["release", command({ kind: "release" }), 7, held, { kind: "release" }],
  ] as [string, NodeCommand, number, ElectionState, object][])("%s", (_name, cmd, observedEpoch, state, expected) => {
    expect(decideCommand(cmd, observedEpoch, state)).toEqual(expected);
  });
});

import { HaAdminService } from "../gen/autonomy/ha/v1/admin_pb.js";
import { LeaderService } from "../gen/autonomy/ha/v1/leader_pb.js";
import { systemClock, type Clock } from "../core/clock.js";
import { ErrorCode, HaError, describeError, invalidArgument } from "../core/errors.js";
import { clientFor, parseServiceUrl, type ClientCredentials } from "../rpc/client.js";
import { fromConnectError } from "../rpc/status.js";
import { backoffDelay, followStream, isPermanent } from "./follow-stream.js";
import { leaderFromWire, type Leader } from "./leader-event.js";

export interface WhileLeaderOptions {
  /** This node's agent (the sidecar next to this process), e.g. http://127.0.0.1:8888. */
  readonly agentUrl: string;
  /** Stops everything: the running callback's signal aborts, then whileLeader resolves. */
  readonly signal: AbortSignal;
  /** mTLS and/or a bearer token, as the CLI's (see loadCredentials / credentialsFromEnv). */
  readonly credentials?: ClientCredentials;
  /** This node's id; by default the agent is asked (GetStatus). */
  readonly nodeId?: string;
  /** What the callback is, for the log lines: "<name> started (…)", "<name> stopped (…)". Default "leader work". */
  readonly name?: string;
  /** Where the start and stop lines go (default: stderr). */
  readonly log?: (line: string) => void;
  /** How often the agent is asked to confirm this node still leads (default 250 ms). */
  readonly confirmIntervalMs?: number;
  /**
   * How long after the last confirmation the callback may go on (default
   * 1000 ms). With leaseMs it also sets how long a new term waits before its
   * callback starts: leaseMs + authorityMs, the longest a predecessor's
   * callback can still run. Must be below the agents' --takeover-after and
   * the coordinator's --failure-timeout minus --lease (docs/client.md).
   */
  readonly authorityMs?: number;
  /**
   * The agents' --lease (default 1000 ms, the agents' default): how long an
   * agent whose lock session was ended by someone else may still say it is
   * Write-Ready before its own lease check stops it.
   */
  readonly leaseMs?: number;
  /** For tests of the timing; the system clock by default. */
  readonly clock?: Clock;
}

/** What the callback gets: the term it runs for. */
export interface LeaderTerm {
  readonly nodeId: string;
  /** The fencing token of this term: pass it to fencedTransaction. */
  readonly epoch: number;
  /** Aborts the moment this node's write authority is lost or can no longer be confirmed. */
  readonly signal: AbortSignal;
}

export const DEFAULT_CONFIRM_INTERVAL_MS = 250;
export const DEFAULT_AUTHORITY_MS = 1_000;
export const DEFAULT_LEASE_MS = 1_000;

interface Running {
  readonly epoch: number;
  readonly controller: AbortController;
  reason: string;
  done?: Promise<void>;
}

/**
 * Runs `work` exactly while this node holds write authority: started once the
 * agent confirms this node leads (and a predecessor's callback has had time
 * to stop), aborted through its signal the moment the agent says otherwise,
 * its stream breaks, or no confirmation arrives within authorityMs. Never two
 * callbacks at once: the next starts only after the last one has returned.
 * A callback that throws while still leading is started again after a pause;
 * one that returns is not run again in the same epoch. Resolves when
 * `signal` aborts and the callback has returned; rejects only for what no
 * retry fixes (refused credentials, bad options).
 */
export async function whileLeader(options: WhileLeaderOptions, work: (term: LeaderTerm) => Promise<void>): Promise<void> {
  const o = checkOptions(options, work);
  const clock = options.clock ?? systemClock;
  const log = options.log ?? ((line: string) => void process.stderr.write(`${line}\n`));
  const name = options.name ?? "leader work";
  const credentials = options.credentials ?? {};
  const leaders = clientFor(LeaderService, o.url, { credentials });
  const inner = new AbortController();
  const onAbort = () => inner.abort();
  options.signal.addEventListener("abort", onAbort, { once: true });
  if (options.signal.aborted) inner.abort();

  let wakeUp: (() => void) | undefined;
  const wake = () => wakeUp?.();
  let fatal: unknown;
  let streamUp = false;
  let confirmedEpoch = 0;
  let validUntil = 0;
  let epochSince = 0;
  let finishedEpoch = 0;
  let retryAfter = 0;
  let failures = 0;
  let running: Running | undefined;
  let deadline: NodeJS.Timeout | undefined;

  const nodeId = options.nodeId ?? (await askNodeId(o.url, credentials, inner.signal, clock, log).catch((err: unknown) => void (fatal = err)));
  const revoke = (why: string) => {
    confirmedEpoch = 0;
    validUntil = 0;
    if (running && !running.controller.signal.aborted) {
      running.reason = why;
      running.controller.abort(new HaError(ErrorCode.FailedPrecondition, `${nodeId} no longer holds write authority at epoch ${running.epoch}: ${why}`));
    }
    wake();
  };
  const notMine = (l: Leader) =>
    l.holderId === nodeId ? `the agent reports ${nodeId} not Write-Ready at epoch ${l.epoch}` : l.holderId ? `${l.holderId} leads at epoch ${l.epoch}` : "nobody leads";

  const watching = nodeId
    ? followStream({
        open: (signal) => leaders.watchLeader({}, { signal }),
        signal: inner.signal,
        retryFirst: true,
        onEvent: (e) => {
          streamUp = true;
          const l = leaderFromWire(e.leader);
          const mine = l.holderId === nodeId && l.writeReady;
          if (confirmedEpoch && (!mine || l.epoch !== confirmedEpoch)) revoke(notMine(l));
          wake();
        },
        onLost: (reason) => {
          streamUp = false;
          revoke(`lost the agent's leader stream (${reason})`);
        },
      }).catch((err: unknown) => {
        fatal = err;
        wake();
      })
    : Promise.resolve();

  // Timers may fire a fraction of a millisecond before the monotonic clock
  // reaches the deadline: then the timer is set again rather than forgotten.
  const armDeadline = () => {
    clearTimeout(deadline);
    deadline = setTimeout(() => {
      if (!confirmedEpoch) return;
      if (clock.monotonicMs() >= validUntil) revoke(`no confirmation from the agent at ${o.url} for ${o.authorityMs}ms`);
      else armDeadline();
    }, Math.max(1, Math.ceil(validUntil - clock.monotonicMs())));
  };

  const start = (epoch: number) => {
    const r: Running = { epoch, controller: new AbortController(), reason: "" };
    running = r;
    log(`${name} started (${nodeId} leads at epoch ${epoch})`);
    r.done = (async () => {
      try {
        await work({ nodeId: nodeId!, epoch, signal: r.controller.signal });
        failures = 0;
        if (!r.controller.signal.aborted) {
          finishedEpoch = epoch;
          r.reason = `it returned while ${nodeId} still leads; not run again in epoch ${epoch}`;
        }
      } catch (err) {
        if (!r.controller.signal.aborted) {
          const pause = backoffDelay(failures++);
          retryAfter = clock.monotonicMs() + pause;
          r.reason = `it failed: ${describeError(err)}; started again in ${pause}ms if ${nodeId} still leads`;
        }
      } finally {
        r.controller.abort();
        log(`${name} stopped (${nodeId}, epoch ${epoch}): ${r.reason}`);
        running = undefined;
        wake();
      }
    })();
  };

  try {
    while (nodeId && !inner.signal.aborted && fatal === undefined) {
      const sent = clock.monotonicMs();
      let answer: Leader | undefined;
      try {
        const r = await leaders.getLeader({}, { signal: inner.signal, timeoutMs: Math.max(o.confirmIntervalMs, o.authorityMs / 2) });
        answer = leaderFromWire(r.leader);
      } catch (err) {
        if (isPermanent(err)) fatal = err;
      }
      const received = clock.monotonicMs();
      if (answer && answer.holderId === nodeId && answer.writeReady && streamUp) {
        if (answer.epoch !== confirmedEpoch) {
          if (running) revoke(`the agent reports epoch ${answer.epoch}, not ${running.epoch}`);
          confirmedEpoch = answer.epoch;
          // Counted from this answer, which came after the new term opened. A
          // predecessor's agent may have gone on saying it leads for up to a
          // lease after its session ended (it learns at its next heartbeat),
          // and its callback for authorityMs after that.
          epochSince = received;
        }
        validUntil = sent + o.authorityMs;
        armDeadline();
      } else if (answer && confirmedEpoch) {
        revoke(notMine(answer));
      }
      const now = clock.monotonicMs();
      if (confirmedEpoch && now >= validUntil) revoke(`no confirmation from the agent at ${o.url} for ${o.authorityMs}ms`);
      if (!running && confirmedEpoch && confirmedEpoch !== finishedEpoch && now < validUntil && now >= epochSince + o.takeoverWaitMs && now >= retryAfter) {
        start(confirmedEpoch);
      }
      const due = !running && confirmedEpoch ? Math.min(o.confirmIntervalMs, Math.max(1, epochSince + o.takeoverWaitMs - now)) : o.confirmIntervalMs;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, due);
        wakeUp = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wakeUp = undefined;
    }
  } finally {
    inner.abort();
    revoke(fatal === undefined ? "whileLeader's signal aborted" : `whileLeader failed: ${describeError(fatal)}`);
    clearTimeout(deadline);
    await running?.done;
    await watching;
    options.signal.removeEventListener("abort", onAbort);
  }
  if (fatal !== undefined && !options.signal.aborted) {
    const e = fromConnectError(fatal, `whileLeader: the agent at ${o.url} refused (check agentUrl and the credentials)`);
    throw new HaError(e.code, e.message, { cause: fatal, retryable: false });
  }
}

function checkOptions(options: WhileLeaderOptions, work: unknown): { url: string; confirmIntervalMs: number; authorityMs: number; takeoverWaitMs: number } {
  if (!options || typeof options.agentUrl !== "string") throw invalidArgument("whileLeader: agentUrl is required: this node's agent, e.g. http://127.0.0.1:8888");
  if (!(options.signal instanceof AbortSignal)) throw invalidArgument("whileLeader: signal is required (an AbortSignal that stops the work and whileLeader)");
  if (typeof work !== "function") throw invalidArgument("whileLeader: the second argument must be the callback, async ({ epoch, signal }) => { … }");
  const url = parseServiceUrl(options.agentUrl, "whileLeader: agentUrl");
  const confirmIntervalMs = options.confirmIntervalMs ?? DEFAULT_CONFIRM_INTERVAL_MS;
  const authorityMs = options.authorityMs ?? DEFAULT_AUTHORITY_MS;
  if (!Number.isFinite(confirmIntervalMs) || confirmIntervalMs < 10) throw invalidArgument(`whileLeader: confirmIntervalMs (${confirmIntervalMs}) must be at least 10`);
  if (!(authorityMs >= 2 * confirmIntervalMs)) {
    throw invalidArgument(
      `whileLeader: authorityMs (${authorityMs}ms) must be at least twice confirmIntervalMs (${confirmIntervalMs}ms), or one late confirmation would stop the work`,
    );
  }
  const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  if (!Number.isFinite(leaseMs) || leaseMs <= 0) throw invalidArgument(`whileLeader: leaseMs (${leaseMs}) must be the agents' --lease in milliseconds, above 0`);
  return { url, confirmIntervalMs, authorityMs, takeoverWaitMs: leaseMs + authorityMs };
}

/** The agent's node id, asked until it answers (or the signal aborts: undefined). */
async function askNodeId(url: string, credentials: ClientCredentials, signal: AbortSignal, clock: Clock, log: (line: string) => void): Promise<string | undefined> {
  const admin = clientFor(HaAdminService, url, { credentials, timeoutMs: 5_000 });
  for (let attempt = 0; !signal.aborted; attempt++) {
    try {
      const status = await admin.getStatus({}, { signal });
      if (status.answeredBy === "coordinator") {
        throw invalidArgument(`whileLeader: ${url} is the coordinator; agentUrl must name this node's own agent (the sidecar next to this process)`);
      }
      if (status.nodeId) return status.nodeId;
      throw invalidArgument(`whileLeader: ${url} answered without a node id (answered by "${status.answeredBy}"); agentUrl must name this node's agent, not the coordinator, or pass nodeId`);
    } catch (err) {
      if (signal.aborted) return undefined;
      if (err instanceof HaError || isPermanent(err)) throw err;
      if (attempt === 0) log(`whileLeader: cannot reach the agent at ${url} yet (${describeError(err)}); retrying`);
      await clock.sleep(backoffDelay(attempt), signal).catch(() => undefined);
    }
  }
  return undefined;
}

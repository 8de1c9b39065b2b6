// Hostile clients of the coordinator: a rogue report stream without valid
// credentials, and a forged report from a valid agent credential that claims
// the lock and an epoch far above the real one. The first must be refused;
// the second may be accepted as a stream but must never be believed (the
// checker looks for its epoch in the databases, the audit and the agents).

import { Code, ConnectError } from "@connectrpc/connect";
import { createWritableIterable } from "@connectrpc/connect/protocol";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { AgentService, type ConnectRequestSchema } from "../gen/autonomy/ha/v1/agent_pb.js";
import { NodeRole } from "../gen/autonomy/ha/v1/types_pb.js";
import { NODE_ID_HEADER } from "../core/metadata.js";
import { clientFor } from "../rpc/client.js";
import type { HostileOutcome } from "./history.js";

type Outgoing = MessageInitShape<typeof ConnectRequestSchema>;

export interface ForgedClaim {
  /** The node id the stream reports as (its token's name). */
  readonly nodeId: string;
  readonly token: string;
  /** The current epoch; the claims are built on it. */
  readonly epoch: bigint;
  /** The real leader's lock session pid, claimed as ours. */
  readonly lockBackendPid: number;
}

function leaderReport(sequence: number, epoch: bigint, lockBackendPid: number): Outgoing {
  return {
    message: {
      case: "report",
      value: {
        sequence: BigInt(sequence),
        clusterId: "default",
        sentAt: timestampFromMs(Date.now()),
        role: NodeRole.LEADER,
        sessionLockHeld: true,
        writeReady: true,
        epoch,
        highestEpochSeen: epoch,
        lockBackendPid,
        lockConfirmedAt: timestampFromMs(Date.now()),
        priority: 1_000_000,
        leaseMs: 1_000,
      },
    },
  };
}

/** Reports for `ms` on one stream; resolves with how the stream ended. */
async function streamFor(url: string, nodeId: string, token: string | undefined, epoch: bigint, pid: number, ms: number): Promise<{ refused: boolean; detail: string }> {
  const client = clientFor(AgentService, url, { metadata: { [NODE_ID_HEADER]: nodeId }, credentials: token ? { token } : {} });
  const abort = new AbortController();
  const requests = createWritableIterable<Outgoing>();
  const until = Date.now() + ms;
  const writer = (async () => {
    for (let seq = 1; Date.now() < until && !abort.signal.aborted; seq++) {
      await requests.write(leaderReport(seq, epoch, pid)).catch(() => abort.abort());
      await new Promise((r) => setTimeout(r, 250));
    }
    requests.close();
  })();
  const timer = setTimeout(() => abort.abort(), ms + 1_000);
  try {
    for await (const _ of client.connect(requests, { signal: abort.signal })) {
      // Commands sent to a forger are ignored.
    }
    return { refused: false, detail: "stream accepted and ended by the coordinator" };
  } catch (err) {
    if (err instanceof ConnectError && (err.code === Code.Unauthenticated || err.code === Code.PermissionDenied)) {
      return { refused: true, detail: `${Code[err.code]}: ${err.rawMessage}` };
    }
    if (abort.signal.aborted) return { refused: false, detail: "stream accepted for its whole duration" };
    return { refused: false, detail: `stream failed: ${(err as Error).message}` };
  } finally {
    clearTimeout(timer);
    abort.abort();
    await writer.catch(() => undefined);
  }
}

/** A stream with no token, then one with a made-up token, both claiming to be `impersonate` holding the lock. */
export async function rogueStream(url: string, impersonate: string, epoch: bigint, pid: number, ms: number): Promise<HostileOutcome> {
  const at = Date.now();
  const none = await streamFor(url, impersonate, undefined, epoch, pid, ms / 2);
  const wrong = await streamFor(url, impersonate, "not-a-token-of-this-cluster-0123456789", epoch, pid, ms / 2);
  return {
    kind: "rogue-stream",
    at,
    refused: none.refused && wrong.refused,
    detail: `no token: ${none.detail}; wrong token: ${wrong.detail}`,
    claimedEpoch: Number(epoch),
  };
}

/**
 * Two forged streams from a valid agent credential, both claiming the real
 * leader's lock session: one with an epoch far above the real one, one with
 * the next epoch, which a coordinator that believed reports would crown.
 */
export async function forgedReport(url: string, claim: ForgedClaim, ms: number): Promise<HostileOutcome> {
  const at = Date.now();
  const huge = await streamFor(url, claim.nodeId, claim.token, claim.epoch + 1_000_000n, claim.lockBackendPid, ms / 2);
  const plausible = await streamFor(url, claim.nodeId, claim.token, claim.epoch + 1n, claim.lockBackendPid, ms / 2);
  return {
    kind: "forged-report",
    at,
    // Accepting the stream is allowed; believing it is not (the checker looks for the epoch and the forger in the audit).
    refused: true,
    detail: `${claim.nodeId} claimed the lock pid ${claim.lockBackendPid} with epoch ${claim.epoch + 1_000_000n}: ${huge.detail}; with epoch ${claim.epoch + 1n}: ${plausible.detail}`,
    claimedEpoch: Number(claim.epoch + 1_000_000n),
    impostor: claim.nodeId,
  };
}

import { hostname, userInfo } from "node:os";
import { Code, ConnectError } from "@connectrpc/connect";
import { HaAdminService } from "../gen/autonomy/ha/v1/admin_pb.js";
import { LeaderService } from "../gen/autonomy/ha/v1/leader_pb.js";
import { clientFor, parseServiceUrls, type Client, type ClientCredentials } from "../rpc/client.js";
import { fromConnectError } from "../rpc/status.js";
import { ErrorCode } from "../core/errors.js";
import { randomUUID } from "node:crypto";
import { CALLER_HEADER, IDEMPOTENCY_KEY_HEADER } from "../core/metadata.js";
import { ExitCode, UsageError } from "./exit-codes.js";
import { CliExit, type FailureCode } from "./failure.js";
import { oneLine } from "./output/format.js";

/*
 * The CLI's one door to the orchestrator (coordinator or any agent): which
 * URL, who is calling, and how each gRPC failure becomes one actionable line
 * and an exit code.
 */

export const DEFAULT_ORCHESTRATOR_URL = "http://127.0.0.1:8890";
export const URL_ENV = "AUTONOMY_ORCHESTRATOR_URL";

/**
 * --orchestrator-url, else AUTONOMY_ORCHESTRATOR_URL, else the dev default
 * (https:// when TLS credentials are set). Several coordinators may be listed,
 * separated by commas: each call goes to the active one (a standby names it)
 * and moves on when one is down.
 */
export function orchestratorUrl(command: string, flag: string | undefined, credentials: ClientCredentials = {}, env: NodeJS.ProcessEnv = process.env): string {
  const fallback = credentials.tls ? DEFAULT_ORCHESTRATOR_URL.replace("http:", "https:") : DEFAULT_ORCHESTRATOR_URL;
  const raw = flag ?? (env[URL_ENV] || fallback);
  const what = flag !== undefined ? "--orchestrator-url" : env[URL_ENV] ? URL_ENV : "the orchestrator URL";
  try {
    const urls = parseServiceUrls(raw, what);
    const plain = urls.split(",").find((u) => u.startsWith("http:"));
    if (credentials.tls && plain) throw new Error(`${what} ${plain} is http:// but TLS credentials are set; use https://`);
    return urls;
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err), command);
  }
}

export function callerIdentity(): string {
  let user = process.env.USER ?? "unknown";
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (some containers): keep $USER.
  }
  return `autonomy-cli ${user}@${hostname()}`;
}

const metadata = () => ({ [CALLER_HEADER]: callerIdentity() });

/** The cluster this command's calls name (--cluster); "" lets a single-cluster coordinator answer for its own. */
let commandCluster = "";

export function useCluster(clusterId: string): void {
  commandCluster = clusterId;
}

/** One client per command run, with one idempotency key: a retry on another coordinator is the same request. */
export function adminClient(url: string, timeoutMs: number, credentials?: ClientCredentials): Client<typeof HaAdminService> {
  return clientFor(HaAdminService, url, { metadata: { ...metadata(), [IDEMPOTENCY_KEY_HEADER]: randomUUID() }, timeoutMs, credentials, clusterId: commandCluster });
}

/** No default deadline: a watch lasts until Ctrl-C. */
export function leaderClient(url: string, credentials?: ClientCredentials): Client<typeof LeaderService> {
  return clientFor(LeaderService, url, { metadata: metadata(), credentials, clusterId: commandCluster });
}

export interface CallInfo {
  readonly command: string;
  readonly url: string;
  readonly timeoutMs: number;
  /** A mutation that timed out may still complete; the line says how to check. */
  readonly mutating: boolean;
}

/** Turns whatever a call threw into the failure (line and exit code) the user sees. */
export function rpcFailure(err: unknown, call: CallInfo): CliExit {
  const where = `the orchestrator at ${call.url}`;
  const fail = (code: FailureCode, message: string, exitCode: number = ExitCode.Failed) => new CliExit({ command: call.command, code, message, exitCode });
  if (err instanceof ConnectError) {
    // A transport failure carries the socket error as its cause; an UNAVAILABLE
    // sent by a server (e.g. an agent that cannot reach its coordinator) does not.
    if (isTransportFailure(err)) {
      return fail("unreachable", `cannot reach ${where}: ${oneLine(err.rawMessage)}; check --orchestrator-url / ${URL_ENV}`);
    }
    if (err.code === Code.Unimplemented) {
      return fail("not_served", `${where} does not serve this call (${oneLine(err.rawMessage)}); is --orchestrator-url an autonomy coordinator or agent?`);
    }
    if (err.code === Code.DeadlineExceeded) {
      const after = call.mutating ? '; the request may still complete: check "autonomy ha status"' : "";
      return fail("timeout", `no answer from ${where} within ${call.timeoutMs / 1000}s${after}`);
    }
  }
  const e = fromConnectError(err);
  const message = oneLine(e.message);
  switch (e.code) {
    case ErrorCode.FailedPrecondition:
    case ErrorCode.Aborted:
      // The runbooks' 409s: the server checked and said no; nothing changed.
      return fail("refused", message, ExitCode.Refused);
    case ErrorCode.InvalidArgument:
      return fail("invalid_request", message, ExitCode.Usage);
    case ErrorCode.NotFound:
      return fail("not_found", message);
    case ErrorCode.Unauthenticated:
    case ErrorCode.PermissionDenied:
      return fail("not_allowed", message);
    case ErrorCode.Unavailable:
      return fail("unavailable", message);
    default:
      return fail("failed", message);
  }
}

/** UNAVAILABLE raised by the client's own socket (refused, reset, DNS), not sent by a server. */
export function isTransportFailure(err: ConnectError): boolean {
  return err.code === Code.Unavailable && err.cause instanceof Error && !(err.cause instanceof ConnectError);
}

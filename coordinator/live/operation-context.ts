import type { Clock } from "../../core/clock.js";
import { ErrorCode, HaError, invalidArgument } from "../../core/errors.js";
import type { Logger } from "../../core/log.js";
import type { SchemaName } from "../../db/identifiers.js";
import { validateNodeId } from "../../db/identifiers.js";
import type { PrimaryPool } from "../../db/primary-pool.js";
import type { DatabaseFailover } from "./database-failover.js";
import type { AuditLog } from "../audit/audit-log.js";
import type { CoordinatorPolicy } from "../config.js";
import { nodeById, type ClusterView, type NodeState } from "../view/cluster-view.js";
import type { DatabaseTruthPoller } from "./db-truth.js";
import type { Engine } from "./engine.js";
import type { NodeSessions } from "./node-sessions.js";

/** What admin operations (failover, recovery) act through. */
export interface OperationContext {
  readonly policy: CoordinatorPolicy;
  readonly engine: Engine;
  readonly sessions: NodeSessions;
  readonly truth: DatabaseTruthPoller;
  readonly pool: PrimaryPool;
  /** The servers of --database-url: authority, containment, promotions. */
  readonly databases: DatabaseFailover;
  /** The coordinator's --region. */
  readonly region: string;
  readonly schema: SchemaName;
  readonly audit: AuditLog;
  readonly clock: Clock;
  readonly log: Logger;
}

/** Who asked, for the audit log: the caller's metadata and the peer address. */
export interface Requester {
  readonly operator: string;
  readonly reason: string;
  readonly caller: string;
}

export function requireText(value: string, what: string, hint: string): string {
  const v = value.trim();
  if (v === "") throw invalidArgument(`${what} is required (${hint})`);
  if (v.length > 1000) throw invalidArgument(`${what} is longer than 1000 characters`);
  return v;
}

export function requireRequester(operator: string, reason: string, caller: string): Requester {
  return {
    operator: requireText(operator, "operator", "--operator or AUTONOMY_OPERATOR"),
    reason: requireText(reason, "reason", "--reason: say why, it is recorded in the audit log"),
    caller,
  };
}

export function checkCluster(requested: string, policy: CoordinatorPolicy): void {
  if (requested !== "" && requested !== policy.clusterId) {
    throw new HaError(ErrorCode.NotFound, `unknown cluster "${requested.slice(0, 100)}"; this coordinator serves "${policy.clusterId}"`);
  }
}

/** A node named in a request: well-formed and known, else a clear error. */
export function knownNode(view: ClusterView, raw: string, what: string): NodeState {
  let id: string;
  try {
    id = validateNodeId(raw);
  } catch (err) {
    throw invalidArgument(`${what}: ${(err as Error).message}`);
  }
  const n = nodeById(view, id);
  if (!n) {
    const known = view.nodes.map((x) => x.nodeId).sort();
    throw new HaError(ErrorCode.NotFound, `${what}: unknown node ${id}; known nodes: ${known.length ? known.join(", ") : "none"}`);
  }
  return n;
}

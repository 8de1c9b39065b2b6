import { parseListen } from "../core/host-port.js";
import { invalidArgument } from "../core/errors.js";
import { DEFAULT_CLUSTER_ID, SchemaName, validateNodeId, validateRegion } from "../db/identifiers.js";
import { parseServerFence, type ServerFence } from "./live/database-failover.js";
import type { SettingSpec, Settings } from "../core/settings.js";
import { serverSecurity, serverSecuritySettings } from "../rpc/auth/settings.js";
import { parseServiceUrl } from "../rpc/client.js";
import { makePolicy } from "./config.js";
import type { CoordinatorConfig } from "./start-coordinator.js";

/** `autonomy coordinator` settings: one table drives flags, env, --config and --help. */
export const coordinatorSettings: readonly SettingSpec[] = [
  { flag: "database-url", env: "AUTONOMY_DATABASE_URL", kind: "string", required: true, help: "the lock database, read for the truth; multi-host (h1,h2?target_session_attrs=read-write) follows the authoritative primary" },
  { flag: "region", env: "AUTONOMY_REGION", kind: "string", help: "where this coordinator runs, e.g. eu-west-1 (shown in status)" },
  { flag: "contain-superseded", env: "AUTONOMY_CONTAIN_SUPERSEDED", kind: "bool", default: "true", help: "fence a primary that a promotion left behind (no term, no assert_epoch there) and hold its nodes" },
  { flag: "fence-superseded-server", env: "AUTONOMY_FENCE_SUPERSEDED_SERVER", kind: "string", default: "none", help: "also fence that server itself: none, read-only (ALTER SYSTEM default_transaction_read_only, end client sessions) or exec:/path/to/script" },
  { flag: "coordinator-id", env: "AUTONOMY_COORDINATOR_ID", kind: "string", help: "this coordinator's name among the coordinators sharing the lock database (default coordinator-HOSTNAME-PORT)" },
  { flag: "advertise-url", env: "AUTONOMY_ADVERTISE_URL", kind: "string", help: "the URL agents and the CLI reach this coordinator at, which a standby names when it redirects (default: as it listens)" },
  { flag: "listen", env: "AUTONOMY_COORDINATOR_LISTEN", kind: "string", default: "127.0.0.1:8890", help: "HOST:PORT for gRPC (agents, CLI) and HTTP (health, metrics)" },
  { flag: "audit-dir", env: "AUTONOMY_AUDIT_DIR", kind: "string", default: "./autonomy-audit", help: "directory of the JSON-lines audit log" },
  { flag: "schema", env: "AUTONOMY_SCHEMA", kind: "string", default: "public", help: "schema of leadership_state and leader_epochs" },
  { flag: "cluster-id", env: "AUTONOMY_CLUSTER_ID", kind: "string", default: DEFAULT_CLUSTER_ID, help: "cluster id (one lock and epoch sequence per cluster); several, comma-separated, for a coordinator tier serving many clusters" },
  { flag: "auto-failover", env: "AUTONOMY_AUTO_FAILOVER", kind: "bool", default: "true", help: "order the best candidate to campaign when the leader is gone" },
  { flag: "failure-timeout", env: "AUTONOMY_FAILURE_TIMEOUT", kind: "duration", default: "2500ms", help: "a leader silent on its stream AND its database heartbeat this long is dead" },
  { flag: "failover-cooldown", env: "AUTONOMY_FAILOVER_COOLDOWN", kind: "duration", default: "60s", help: "after an automatic failover, an unconfirmed death waits this long" },
  { flag: "auto-recover-split-brain", env: "AUTONOMY_AUTO_RECOVER_SPLIT_BRAIN", kind: "bool", default: "false", help: "promote the highest-epoch healthy node when a split-brain is found" },
  { flag: "designate-successor", env: "AUTONOMY_DESIGNATE_SUCCESSOR", kind: "bool", default: "true", help: "keep the best candidate waiting on the lock, so a crash hands over in ms" },
  { flag: "poll-interval", env: "AUTONOMY_POLL_INTERVAL", kind: "duration", default: "200ms", help: "how often the lock database is read" },
  { flag: "report-stale-after", env: "AUTONOMY_REPORT_STALE_AFTER", kind: "duration", default: "2s", help: "a node that has not reported this long no longer counts as alive" },
  { flag: "lag-warn", env: "AUTONOMY_LAG_WARN", kind: "duration", default: "5s", help: "replication lag above this is warn" },
  { flag: "lag-critical", env: "AUTONOMY_LAG_CRITICAL", kind: "duration", default: "10s", help: "replication lag above this is critical: failover refused unless forced" },
  { flag: "lag-gate-max-wait", env: "AUTONOMY_LAG_GATE_MAX_WAIT", kind: "duration", default: "30s", help: "a leaderless cluster accepts a lag-critical candidate after this long" },
  { flag: "intruder-grace", env: "AUTONOMY_INTRUDER_GRACE", kind: "duration", default: "5s", help: "a lock holder no agent's report names, carrying a live node's name, is ended after this long" },
  { flag: "node-expiry", env: "AUTONOMY_NODE_EXPIRY", kind: "duration", default: "10m", help: "a node that has not reported this long leaves the view" },
  { flag: "max-nodes", env: "AUTONOMY_MAX_NODES", kind: "int", default: "64", help: "at most this many distinct node ids; streams of further ids are refused" },
  { flag: "settle", env: "AUTONOMY_SETTLE", kind: "duration", default: "1500ms", help: "cold start (no leader): hold the nodes that report this long after the first, then order the best to lead (0 disables)" },
  { flag: "expect-nodes", env: "AUTONOMY_EXPECT_NODES", kind: "string", help: "comma-separated node ids: the cold-start settle ends as soon as all have reported (waiting up to --settle-max)" },
  { flag: "settle-max", env: "AUTONOMY_SETTLE_MAX", kind: "duration", default: "10s", help: "with --expect-nodes, the longest the cold-start settle waits for the missing ones" },
  { flag: "operation-timeout", env: "AUTONOMY_OPERATION_TIMEOUT", kind: "duration", default: "10s", help: "deadline for a failover or recovery to be confirmed" },
  ...serverSecuritySettings,
  { flag: "log-level", env: "AUTONOMY_LOG_LEVEL", kind: "string", default: "info", help: "trace, debug, info, warn or error" },
];

/** Settings → a validated CoordinatorConfig; errors name the setting or the relation. */
export function coordinatorConfig(s: Settings): CoordinatorConfig {
  const { host, port } = parseListen(s.string("listen"));
  new SchemaName(s.string("schema"));
  const auditDir = s.string("audit-dir");
  if (auditDir === "") throw invalidArgument("--audit-dir must not be empty");
  const clusters = s.string("cluster-id").split(",").map((id) => id.trim());
  if (clusters.some((id) => id === "")) throw invalidArgument(`--cluster-id "${s.string("cluster-id")}" has an empty entry; separate cluster ids with single commas`);
  const policy = makePolicy({
    clusterId: clusters[0],
    autoFailover: s.bool("auto-failover"),
    failureTimeoutMs: s.number("failure-timeout"),
    failoverCooldownMs: s.number("failover-cooldown"),
    autoRecoverSplitBrain: s.bool("auto-recover-split-brain"),
    designateSuccessor: s.bool("designate-successor"),
    pollIntervalMs: s.number("poll-interval"),
    reportStaleAfterMs: s.number("report-stale-after"),
    lagWarnSeconds: s.number("lag-warn") / 1000,
    lagCriticalSeconds: s.number("lag-critical") / 1000,
    lagGateMaxWaitMs: s.number("lag-gate-max-wait"),
    operationTimeoutMs: s.number("operation-timeout"),
    intruderGraceMs: s.number("intruder-grace"),
    nodeExpiryMs: s.number("node-expiry"),
    maxNodes: s.number("max-nodes"),
    settleMs: s.number("settle"),
    settleMaxMs: s.number("settle-max"),
    expectNodes: expectNodes(s.optionalString("expect-nodes")),
  });
  let serverFence: ServerFence;
  try {
    serverFence = parseServerFence(s.string("fence-superseded-server"));
  } catch (err) {
    throw invalidArgument((err as Error).message);
  }
  return {
    databaseUrl: s.string("database-url"),
    host,
    port,
    auditDir,
    schema: s.string("schema"),
    policy,
    clusters,
    security: serverSecurity(s),
    region: validateRegion(s.optionalString("region") ?? ""),
    containSuperseded: s.bool("contain-superseded"),
    serverFence,
    ...(s.optionalString("coordinator-id") ? { coordinatorId: validateNodeId(s.string("coordinator-id")) } : {}),
    ...(s.optionalString("advertise-url") ? { advertiseUrl: parseServiceUrl(s.string("advertise-url"), "--advertise-url") } : {}),
  };
}

/** --expect-nodes: node ids, each checked as the agents check theirs. */
function expectNodes(raw: string | undefined): string[] {
  if (!raw) return [];
  const ids = raw.split(",").map((x) => x.trim()).filter((x) => x !== "");
  try {
    return ids.map(validateNodeId);
  } catch (err) {
    throw invalidArgument(`--expect-nodes: ${(err as Error).message}`);
  }
}

import { invalidArgument } from "../core/errors.js";
import { DEFAULT_CLUSTER_ID, SchemaName, validateClusterId, validateNodeId, validateRegion } from "../db/identifiers.js";
import type { SettingSpec, Settings } from "../core/settings.js";
import { parseListen } from "../core/host-port.js";
import { parseServiceUrls, type ClientCredentials } from "../rpc/client.js";
import { serverSecurity, serverSecuritySettings, type ServerSecurity } from "../rpc/auth/settings.js";

/** Everything an agent needs, validated. Durations are milliseconds. */
export interface AgentConfig {
  readonly nodeId: string;
  readonly clusterId: string;
  /** Where this node runs (--region); shown as the writer region while it leads. */
  readonly region: string;
  readonly databaseUrl: string;
  readonly localDatabaseUrl: string | undefined;
  /** The coordinator, or every coordinator of the tier comma-separated (normalised). */
  readonly coordinatorUrl: string | undefined;
  readonly listenHost: string;
  readonly listenPort: number;
  readonly schema: SchemaName;
  readonly priority: number;
  readonly nofailover: boolean;
  /** Wait on the lock so this node wins the instant the leader's session ends. */
  readonly successor: boolean;
  readonly heartbeatIntervalMs: number;
  readonly leaseMs: number;
  readonly campaignIntervalMs: number;
  readonly takeoverAfterMs: number;
  readonly probeIntervalMs: number;
  readonly reportIntervalMs: number;
  readonly lagWarnSeconds: number;
  readonly lagCriticalSeconds: number;
  readonly minSyncReplicas: number;
  readonly connectTimeoutMs: number;
  /** Who may call this node's port; without it the agent must listen on loopback. */
  readonly security?: ServerSecurity;
  /** What the agent proves itself with to the coordinator. */
  readonly coordinatorCredentials?: ClientCredentials;
}

export const agentSettings: readonly SettingSpec[] = [
  { flag: "node-id", env: "AUTONOMY_NODE_ID", kind: "string", required: true, help: "this node's id, e.g. cp-node-1" },
  { flag: "database-url", env: "AUTONOMY_DATABASE_URL", kind: "string", required: true, help: "the primary, where the lock lives (multi-host with target_session_attrs=read-write works)" },
  { flag: "local-database-url", env: "AUTONOMY_LOCAL_DATABASE_URL", kind: "string", help: "this node's own PostgreSQL, to probe in_recovery, timeline and replay lag" },
  { flag: "coordinator-url", env: "AUTONOMY_COORDINATOR_URL", kind: "string", help: "the coordinator, e.g. http://127.0.0.1:8890, or every coordinator of the tier, comma-separated; without it the agent runs alone" },
  { flag: "listen", env: "AUTONOMY_LISTEN", kind: "string", default: "127.0.0.1:8888", help: "HOST:PORT for the node's gRPC and HTTP endpoints" },
  { flag: "cluster-id", env: "AUTONOMY_CLUSTER_ID", kind: "string", default: DEFAULT_CLUSTER_ID, help: "cluster id (one lock and epoch sequence per cluster)" },
  { flag: "schema", env: "AUTONOMY_SCHEMA", kind: "string", default: "public", help: "schema of leadership_state, leader_epochs and assert_epoch()" },
  { flag: "region", env: "AUTONOMY_REGION", kind: "string", help: "where this node runs, e.g. eu-west-1; shown as the writer region while it leads" },
  { flag: "priority", env: "AUTONOMY_PRIORITY", kind: "int", default: "100", help: "successor preference, higher first" },
  { flag: "nofailover", env: "AUTONOMY_NOFAILOVER", kind: "bool", help: "never become leader" },
  { flag: "successor", env: "AUTONOMY_SUCCESSOR", kind: "bool", help: "stay queued on the lock even while a coordinator is connected (alone, every follower queues)" },
  { flag: "heartbeat-interval", env: "AUTONOMY_HEARTBEAT_INTERVAL", kind: "duration", default: "250ms", help: "how often the leader confirms its lock session" },
  { flag: "lease", env: "AUTONOMY_LEASE", kind: "duration", default: "1s", help: "the leader fences itself when its session is unconfirmed this long" },
  { flag: "campaign-interval", env: "AUTONOMY_CAMPAIGN_INTERVAL", kind: "duration", default: "200ms", help: "how often a standing-by follower decides again; under a coordinator, the least interval of its try-lock backstop" },
  { flag: "takeover-after", env: "AUTONOMY_TAKEOVER_AFTER", kind: "duration", default: "2s", help: "end a hung leader's session when its heartbeat is frozen this long" },
  { flag: "probe-interval", env: "AUTONOMY_PROBE_INTERVAL", kind: "duration", default: "1s", help: "how often replication is measured" },
  { flag: "report-interval", env: "AUTONOMY_REPORT_INTERVAL", kind: "duration", default: "500ms", help: "heartbeat report to the coordinator" },
  { flag: "lag-warn", env: "AUTONOMY_LAG_WARN", kind: "duration", default: "5s", help: "replication lag above this is warn (ReplicationLagWarn)" },
  { flag: "lag-critical", env: "AUTONOMY_LAG_CRITICAL", kind: "duration", default: "10s", help: "replication lag above this is critical (ReplicationLagMax)" },
  { flag: "min-sync-replicas", env: "AUTONOMY_MIN_SYNC_REPLICAS", kind: "int", default: "0", help: "sync replicas required for Write-Ready" },
  { flag: "connect-timeout", env: "AUTONOMY_CONNECT_TIMEOUT", kind: "duration", default: "5s", help: "database connect timeout" },
  ...serverSecuritySettings,
  { flag: "coordinator-token", env: "AUTONOMY_COORDINATOR_TOKEN", kind: "string", help: "bearer token this agent presents to the coordinator (a token-file line \"NODE-ID agent TOKEN\"), when it has no certificate" },
  { flag: "log-level", env: "AUTONOMY_LOG_LEVEL", kind: "string", default: "info", help: "trace, debug, info, warn or error" },
];

function checkDatabaseUrl(raw: string, what: string): string {
  if (!/^postgres(ql)?:\/\//.test(raw)) {
    throw invalidArgument(`${what} must be a postgres:// URL, e.g. postgres://user@host:5432/db`);
  }
  return raw;
}

/**
 * Builds the config and checks the timing relations, each failure naming the
 * relation that does not hold (as client-go's leader election does).
 */
export function agentConfig(s: Settings): AgentConfig {
  const listen = parseListen(s.string("listen"));
  const security = serverSecurity(s);
  const coordinatorUrl = s.optionalString("coordinator-url") && parseServiceUrls(s.string("coordinator-url"), "--coordinator-url");
  const plain = coordinatorUrl?.split(",").find((u) => u.startsWith("http:"));
  if (security.auth.tls && plain) {
    throw invalidArgument(`--coordinator-url ${plain} is http:// but this agent has TLS credentials; use https:// so the coordinator's certificate is verified`);
  }
  const cfg: AgentConfig = {
    nodeId: validateNodeId(s.string("node-id")),
    clusterId: validateClusterId(s.string("cluster-id")),
    region: validateRegion(s.optionalString("region") ?? ""),
    databaseUrl: checkDatabaseUrl(s.string("database-url"), "--database-url"),
    localDatabaseUrl: s.optionalString("local-database-url") && checkDatabaseUrl(s.string("local-database-url"), "--local-database-url"),
    coordinatorUrl,
    listenHost: listen.host,
    listenPort: listen.port,
    schema: new SchemaName(s.string("schema")),
    priority: s.number("priority"),
    nofailover: s.bool("nofailover"),
    successor: s.bool("successor"),
    heartbeatIntervalMs: s.number("heartbeat-interval"),
    leaseMs: s.number("lease"),
    campaignIntervalMs: s.number("campaign-interval"),
    takeoverAfterMs: s.number("takeover-after"),
    probeIntervalMs: s.number("probe-interval"),
    reportIntervalMs: s.number("report-interval"),
    lagWarnSeconds: s.number("lag-warn") / 1000,
    lagCriticalSeconds: s.number("lag-critical") / 1000,
    minSyncReplicas: s.number("min-sync-replicas"),
    connectTimeoutMs: s.number("connect-timeout"),
    security,
    // Commands come only from a certificate the CA issued to a coordinator.
    coordinatorCredentials: { tls: security.auth.tls, token: s.optionalString("coordinator-token"), serverRole: "coordinator" },
  };
  return validateAgentConfig(cfg);
}

export function validateAgentConfig(cfg: AgentConfig): AgentConfig {
  const rules: [boolean, string][] = [
    [cfg.heartbeatIntervalMs >= 10, `--heartbeat-interval (${cfg.heartbeatIntervalMs}ms) must be at least 10ms`],
    [
      cfg.leaseMs >= 2 * cfg.heartbeatIntervalMs,
      `--lease (${cfg.leaseMs}ms) must be at least twice --heartbeat-interval (${cfg.heartbeatIntervalMs}ms), so one lost heartbeat does not fence a healthy leader`,
    ],
    [
      cfg.takeoverAfterMs > cfg.leaseMs + cfg.heartbeatIntervalMs,
      `--takeover-after (${cfg.takeoverAfterMs}ms) must exceed --lease plus --heartbeat-interval (${cfg.leaseMs + cfg.heartbeatIntervalMs}ms), so a hung leader has fenced itself before anyone ends its session`,
    ],
    [cfg.campaignIntervalMs >= 10, `--campaign-interval (${cfg.campaignIntervalMs}ms) must be at least 10ms`],
    [cfg.probeIntervalMs >= 50, `--probe-interval (${cfg.probeIntervalMs}ms) must be at least 50ms`],
    [cfg.reportIntervalMs >= 50, `--report-interval (${cfg.reportIntervalMs}ms) must be at least 50ms`],
    [
      cfg.lagCriticalSeconds > cfg.lagWarnSeconds,
      `--lag-critical (${cfg.lagCriticalSeconds}s) must be greater than --lag-warn (${cfg.lagWarnSeconds}s)`,
    ],
    [cfg.minSyncReplicas >= 0, `--min-sync-replicas must not be negative`],
    [cfg.priority >= 0 && cfg.priority <= 1_000_000, `--priority (${cfg.priority}) must be between 0 and 1000000`],
    [!(cfg.nofailover && cfg.successor), `--nofailover and --successor contradict each other; pick one`],
    [cfg.connectTimeoutMs >= 100, `--connect-timeout (${cfg.connectTimeoutMs}ms) must be at least 100ms`],
  ];
  const failed = rules.find(([ok]) => !ok);
  if (failed) throw invalidArgument(failed[1]);
  return cfg;
}

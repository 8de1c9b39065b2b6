// Creates data directories: initdb + configuration for a primary, and
// pg_basebackup (with a physical replication slot) for a streaming standby.

import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { PgBinaries } from "./binaries.js";
import type { PgServer } from "./pg-server.js";
import { pgUser } from "./pg-user.js";
import { runCommand } from "./processes.js";

/** Role the standbys replicate as (trust auth on 127.0.0.1). */
export const REPLICATION_USER = "replicator";

const INITDB_TIMEOUT_MS = 120_000;
const BASEBACKUP_TIMEOUT_MS = 120_000;

/** unix socket paths are limited to 107 bytes (sun_path) on Linux. */
const MAX_SOCKET_PATH = 100;

type Setting = string | number | boolean;

/** Create the server directory, owned by the PostgreSQL user. Refuses to reuse one. */
export function createServerDir(server: PgServer): void {
  try {
    mkdirSync(server.dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") {
      throw new Error(`${server.name}: ${server.dir} already exists; use an empty or new baseDir`);
    }
    throw err;
  }
  pgUser().chown(server.dir);
}

/** initdb a fresh primary and write its configuration and pg_hba.conf. */
export async function initPrimary(server: PgServer, binaries: PgBinaries, extra: Record<string, Setting> = {}): Promise<void> {
  const user = pgUser();
  const major = majorVersion(binaries);
  const args = ["-D", server.dataDir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"];
  // --no-sync: a test cluster needs no crash safety for its initial files,
  // and syncing them is most of initdb's run time on a slow disk.
  args.push("--no-sync");
  if (major >= 14) args.push("--no-instructions");
  const [command, cmdArgs] = user.command(path.join(binaries.bindir, "initdb"), args);
  await runCommand(command, cmdArgs, {
    label: `initdb for ${server.name} (${server.dataDir})`,
    timeoutMs: INITDB_TIMEOUT_MS,
    env: user.env(server.dir),
  });

  // Appended to postgresql.conf (later lines win), so pg_basebackup copies
  // these to every standby, which then overrides only its own identity.
  appendSettings(path.join(server.dataDir, "postgresql.conf"), "cluster settings (pgcluster)", {
    ...clusterSettings(major),
    ...extra,
    ...serverIdentity(server),
  });
  // Existing file: writing keeps its owner (postgres) and 0600 mode.
  writeFileSync(
    path.join(server.dataDir, "pg_hba.conf"),
    [
      "# pgcluster: test cluster, trust on loopback only",
      "local   all          all                 trust",
      "local   replication  all                 trust",
      "host    all          all   127.0.0.1/32  trust",
      "host    replication  all   127.0.0.1/32  trust",
      "",
    ].join("\n"),
  );
}

/** Create the replication role on a running primary. */
export async function createReplicationRole(primary: PgServer): Promise<void> {
  await primary.query(`CREATE ROLE ${REPLICATION_USER} WITH REPLICATION LOGIN`);
}

/**
 * pg_basebackup a standby from a running primary, creating physical slot
 * `slotName`, and point it at the primary with application_name = its name
 * (what synchronous_standby_names and pg_stat_replication refer to).
 */
export async function initStandby(
  standby: PgServer,
  primary: PgServer,
  slotName: string,
  binaries: PgBinaries,
): Promise<void> {
  const user = pgUser();
  const args = [
    "-h", primary.host,
    "-p", String(primary.port),
    "-U", REPLICATION_USER,
    "-D", standby.dataDir,
    "-R", // standby.signal + primary_conninfo
    "-X", "stream",
    "-C", "-S", slotName,
    // Don't wait for a spread checkpoint on the primary: that alone can take minutes.
    "--checkpoint=fast",
    "--no-sync",
    "-w",
  ];
  const [command, cmdArgs] = user.command(path.join(binaries.bindir, "pg_basebackup"), args);
  await runCommand(command, cmdArgs, {
    label: `pg_basebackup for ${standby.name} from ${primary.name} (${primary.host}:${primary.port})`,
    timeoutMs: BASEBACKUP_TIMEOUT_MS,
    env: user.env(standby.dir),
  });

  appendSettings(path.join(standby.dataDir, "postgresql.conf"), `${standby.name} identity (pgcluster)`, serverIdentity(standby));

  // pg_basebackup -R wrote its own primary_conninfo (with passfile, sslmode,
  // ...) into postgresql.auto.conf; replace it with a minimal, explicit one
  // that carries application_name.
  const autoConf = path.join(standby.dataDir, "postgresql.auto.conf");
  const kept = readFileSync(autoConf, "utf8")
    .split("\n")
    .filter((line) => !/^\s*(primary_conninfo|primary_slot_name)\s*=/.test(line) && line.trim() !== "");
  const conninfo = `host=${primary.host} port=${primary.port} user=${REPLICATION_USER} application_name=${standby.name}`;
  writeFileSync(
    autoConf,
    [...kept, `primary_conninfo = ${quote(conninfo)}`, `primary_slot_name = ${quote(slotName)}`, ""].join("\n"),
  );
}

/** Settings shared by every server of the cluster. Tuned for fast, disposable test servers. */
function clusterSettings(major: number): Record<string, Setting> {
  const settings: Record<string, Setting> = {
    listen_addresses: "127.0.0.1",
    wal_level: "replica",
    max_wal_senders: 10,
    max_replication_slots: 10,
    hot_standby: true,
    hot_standby_feedback: true,
    // Durability is irrelevant for throwaway test data; speed is not.
    fsync: false,
    full_page_writes: false,
    shared_buffers: "32MB",
    max_connections: 200,
    logging_collector: false,
    // Standbys reconnect within ~100ms after their upstream restarts (default 5s).
    wal_retrieve_retry_interval: "100ms",
    // Report receive/replay positions to the primary every second (default 10s).
    wal_receiver_status_interval: "1s",
    // Notice dead peers (killed servers, partitioned clients) within seconds.
    tcp_keepalives_idle: 1,
    tcp_keepalives_interval: 1,
    tcp_keepalives_count: 3,
  };
  if (major >= 13) settings.wal_keep_size = "64MB";
  else settings.wal_keep_segments = 4;
  if (major >= 14) settings.client_connection_check_interval = 1000;
  return settings;
}

/** What differs between servers: port, socket directory, name in ps and logs. */
function serverIdentity(server: PgServer): Record<string, Setting> {
  // The socket goes in the server's own directory (owned by the postgres
  // user); if that path is too long for a unix socket, serve TCP only.
  const socketPath = path.join(server.dir, `.s.PGSQL.${server.port}`);
  return {
    port: server.port,
    unix_socket_directories: Buffer.byteLength(socketPath) <= MAX_SOCKET_PATH ? server.dir : "",
    cluster_name: server.name,
  };
}

function appendSettings(file: string, heading: string, settings: Record<string, Setting>): void {
  const lines = Object.entries(settings).map(([key, value]) => `${key} = ${render(value)}`);
  appendFileSync(file, `\n# ${heading}\n${lines.join("\n")}\n`);
}

function render(value: Setting): string {
  if (typeof value === "boolean") return value ? "on" : "off";
  if (typeof value === "number") return String(value);
  return quote(value);
}

function quote(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

function majorVersion(binaries: PgBinaries): number {
  return Number(binaries.version.split(".")[0]);
}

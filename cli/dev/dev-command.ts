import { mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { join, relative, resolve } from "node:path";
import { HaAdminService } from "../../gen/autonomy/ha/v1/admin_pb.js";
import { LeaderService } from "../../gen/autonomy/ha/v1/leader_pb.js";
import { systemClock } from "../../core/clock.js";
import { describeError } from "../../core/errors.js";
import { clientFor } from "../../rpc/client.js";
import { intFlag, parseFlags } from "../args.js";
import type { CommandModule } from "../commands.js";
import { ExitCode, UsageError } from "../exit-codes.js";
import { DevCluster, type DevDescription } from "./dev-cluster.js";
import { devDatabaseCommand, RESTART_OLD_PRIMARY_SIGNAL } from "./dev-database.js";
import { takeDevLock } from "./dev-lock.js";
import { followStream } from "../follow-stream.js";
import { kindName } from "../output/watch.js";
import { RECENT_EVENTS, redraw, renderLiveView, type LiveEvent, type LiveView } from "./live-view.js";

const HELP = `Usage: autonomy dev [--agents N] [--data-dir DIR] [--coordinator-port PORT] [--agent-base-port PORT] [--host HOST] [--secure]
       autonomy dev promote [--crash-primary]   promote the standby (seed 004 §2); see "autonomy dev promote --help"
       autonomy dev zombie                      start a crashed old primary again, as a zombie

Starts a real local cluster and keeps it running until Ctrl-C:
a PostgreSQL primary and a streaming standby, a coordinator, N agents
(cp-node-1..N, priorities N*100..100) and a demo control-plane workload doing
fenced writes into promotion_decisions. Prints where everything listens and
what to try next, and writes a description of everything it started to
DIR/dev.json. On a terminal it then shows a live view (leader, epoch, every
node's role, lag, health and connection, recent events), redrawn in place;
otherwise it prints a line per leader change. DIR/bin holds an \`autonomy\`
link: put it on PATH to run the CLI from any shell or script. Ctrl-C or
SIGTERM stops everything in order.

Flags:
  --agents N               number of agents (default 3, 1-9)
  --data-dir DIR           dev.json, audit log and process logs (default .autonomy)
  --coordinator-port PORT  coordinator port (default 8890)
  --agent-base-port PORT   first agent's port; the others follow (default 8881)
  --host HOST              interface to listen on (default 127.0.0.1)
  --secure                 mTLS on every port with a throwaway CA in DIR/pki, plus a
                           read-only bearer token; prints the env to paste
  --help                   show this help
`;

export const devCommand: CommandModule = {
  name: "dev",
  async run(argv) {
    if (argv[0] === "promote" || argv[0] === "zombie") return devDatabaseCommand(argv[0], argv.slice(1));
    const { values } = parseFlags("dev", argv, {
      agents: { type: "string" },
      "data-dir": { type: "string" },
      "coordinator-port": { type: "string" },
      "agent-base-port": { type: "string" },
      host: { type: "string" },
      secure: { type: "boolean" },
      help: { type: "boolean" },
    });
    if (values.help) {
      process.stdout.write(HELP);
      return ExitCode.Ok;
    }
    const agents = intFlag("dev", "agents", values.agents, 3, 1);
    if (agents > 9) throw new UsageError("--agents must be between 1 and 9", "dev");
    const dataDir = resolve(values["data-dir"] ?? ".autonomy");
    const describePath = join(dataDir, "dev.json");
    const show = (p: string) => relative(process.cwd(), p) || ".";
    mkdirSync(dataDir, { recursive: true });
    const releaseLock = takeDevLock(join(dataDir, "dev.lock"), show(describePath));

    const cluster = new DevCluster({
      agents,
      dataDir,
      host: values.host ?? "127.0.0.1",
      coordinatorPort: intFlag("dev", "coordinator-port", values["coordinator-port"], 8890, 1),
      agentBasePort: intFlag("dev", "agent-base-port", values["agent-base-port"], 8881, 1),
      secure: values.secure === true,
      operator: operatorName(),
      log: (line) => process.stdout.write(`autonomy dev: ${line}\n`),
    });
    const stopSignal = new Promise<NodeJS.Signals>((resolveSignal) => {
      process.once("SIGINT", () => resolveSignal("SIGINT"));
      process.once("SIGTERM", () => resolveSignal("SIGTERM"));
    });
    const cleanup = async () => {
      process.stdout.write("autonomy dev: stopping workload, agents, coordinator and PostgreSQL…\n");
      await cluster.stop();
      rmSync(describePath, { force: true });
      releaseLock();
      process.stdout.write("autonomy dev: stopped; nothing left running\n");
    };

    let description: DevDescription;
    try {
      description = await Promise.race([
        cluster.start(),
        stopSignal.then((s) => {
          throw new Error(`interrupted by ${s} while starting`);
        }),
      ]);
    } catch (err) {
      process.stderr.write(`autonomy dev: ${describeError(err)}\n`);
      await cleanup();
      return ExitCode.Failed;
    }
    writeFileSync(describePath, JSON.stringify(description, null, 2) + "\n");
    // `autonomy dev zombie` asks for the old primary back (only this process can start it).
    process.on(RESTART_OLD_PRIMARY_SIGNAL, () => {
      void cluster.restartOldPrimary().then(
        (done) => process.stdout.write(`autonomy dev: ${done}\n`),
        (err: unknown) => process.stderr.write(`autonomy dev: could not start the old primary: ${describeError(err)}\n`),
      );
    });
    const binDir = linkBin(dataDir);
    process.stdout.write(banner(description, show, binDir));

    const follow = new AbortController();
    const following = followLeader(description.orchestrator_url, cluster, follow.signal);
    await stopSignal;
    follow.abort();
    await following;
    await cleanup();
    return ExitCode.Ok;
  },
};

const BIN = new URL("../../bin/autonomy.js", import.meta.url).pathname;

/**
 * DIR/bin/autonomy → bin/autonomy.js, for `export PATH=DIR/bin:$PATH`. An
 * alias works only in the interactive shell that defined it, and npm does not
 * link a package's own bin into its node_modules/.bin; a directory on PATH
 * works in every shell and script.
 */
function linkBin(dataDir: string): string {
  const dir = join(dataDir, "bin");
  mkdirSync(dir, { recursive: true });
  const link = join(dir, "autonomy");
  rmSync(link, { force: true });
  symlinkSync(BIN, link);
  return dir;
}

/** Who is at the keyboard, for the AUTONOMY_OPERATOR line to paste. */
function operatorName(): string {
  try {
    return userInfo().username || "operator";
  } catch {
    return "operator";
  }
}

function banner(d: DevDescription, show: (p: string) => string, binDir: string): string {
  const [primary, standby] = d.postgres;
  const rows: [string, string][] = [
    ["PostgreSQL primary", primary!.url],
    ["PostgreSQL standby", `${standby!.url}  (streaming from the primary)`],
    ["coordinator", `${d.coordinator.url}  (gRPC + HTTP; audit log in ${show(d.audit_dir)})`],
    ...d.agents.map((a): [string, string] => [
      a.node_id,
      `${a.url}  priority ${a.priority}${a.local_database_url ? `, local database ${a.local_database_url === primary!.url ? "primary" : "standby"}` : ""}, pid ${a.pid}`,
    ]),
    ["demo workload", "fenced writes into promotion_decisions through assert_epoch()"],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  const leaderPids = d.agents.map((a) => `${a.node_id}=${a.pid}`).join(" ");
  return [
    "",
    "autonomy dev: a local cluster is running",
    "",
    ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`),
    "",
    "Try, in another terminal:",
    `  export PATH="${binDir}:$PATH"`,
    `  export AUTONOMY_ORCHESTRATOR_URL=${d.orchestrator_url} AUTONOMY_OPERATOR=${operatorName()} AUTONOMY_AUDIT_DIR=${d.audit_dir}`,
    ...(d.security
      ? [
          `  export ${Object.entries(d.security.env).map(([k, v]) => `${k}=${v}`).join(" ")}`,
          `  # a read-only bearer token, for who cannot carry a certificate: AUTONOMY_TOKEN=${d.security.read_token}`,
        ]
      : []),
    "  autonomy ha status",
    '  autonomy ha failover trigger --reason "planned maintenance"',
    "  autonomy ha split-brain detect",
    "  autonomy ha watch",
    "  autonomy ha history",
    "  autonomy audit query --category ha --limit 10",
    d.security
      ? `  curl -s --cacert ${d.security.ca} --cert ${d.security.admin_cert} --key ${d.security.admin_key} ${d.orchestrator_url}/v1/health/leader`
      : `  curl -s ${d.orchestrator_url}/v1/health/leader`,
    `  kill -9 <the leader's pid>    # automatic failover; pids: ${leaderPids}`,
    "",
    `Everything it started is described in ${show(join(d.data_dir, "dev.json"))}; logs are in ${show(join(d.data_dir, "logs"))}.`,
    "Ctrl-C stops it all.",
    "",
  ].join("\n");
}

/**
 * Follows the leader stream: on a terminal, a live view redrawn in place every
 * second and on every leader event; otherwise a line per leader change.
 */
async function followLeader(url: string, cluster: DevCluster, signal: AbortSignal): Promise<void> {
  const tty = process.stdout.isTTY === true;
  const counters = () => {
    const c = cluster.counters;
    return c ? `fenced writes ${c.written}, stale-epoch rejections ${c.staleRejected}` : "";
  };
  const leaders = clientFor(LeaderService, url, { credentials: cluster.credentials });
  const events: LiveEvent[] = [];
  let view: LiveView = { events };
  let drawn = 0;
  const draw = () => {
    if (!tty || signal.aborted) return;
    const lines = renderLiveView({ ...view, events, counters: cluster.counters }, new Date());
    process.stdout.write(redraw(drawn, lines));
    drawn = lines.length;
  };
  const poller = tty ? pollStatus(url, cluster, signal, (update) => ((view = { ...view, ...update }), draw())) : undefined;
  await followStream({
    open: (s) => leaders.watchLeader({}, { signal: s }),
    signal,
    retryFirst: true,
    onEvent: (e) => {
      const l = e.leader;
      const at = new Date();
      const status = l?.holderId
        ? `[${at.toISOString().slice(11, 19)}] leader ${l.holderId}, epoch ${l.epoch}, ${l.writeReady ? "Write-Ready" : "not Write-Ready"}`
        : `[${at.toISOString().slice(11, 19)}] no leader`;
      if (!tty) {
        process.stdout.write(`${status}${e.message ? ` — ${e.message}` : ""} (${counters()})\n`);
        return;
      }
      events.push({ at, kind: kindName(e.kind), message: e.message });
      events.splice(0, Math.max(0, events.length - RECENT_EVENTS));
      draw();
    },
  }).catch(() => undefined);
  await poller;
}

/** GetStatus every second while the signal lasts, for the live view. */
async function pollStatus(url: string, cluster: DevCluster, signal: AbortSignal, update: (v: Partial<LiveView>) => void): Promise<void> {
  const admin = clientFor(HaAdminService, url, { credentials: cluster.credentials, timeoutMs: 2_000 });
  while (!signal.aborted) {
    try {
      update({ status: await admin.getStatus({}, { signal }), statusError: undefined });
    } catch (err) {
      if (signal.aborted) return;
      update({ statusError: describeError(err) });
    }
    await systemClock.sleep(1_000, signal).catch(() => undefined);
  }
}

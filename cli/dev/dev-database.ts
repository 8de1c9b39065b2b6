import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import pg from "pg";
import { waitFor } from "../../core/clock.js";
import { describeError } from "../../core/errors.js";
import { parseFlags } from "../args.js";
import { ExitCode, UsageError } from "../exit-codes.js";
import { CliExit } from "../failure.js";
import type { DevDescription } from "./dev-cluster.js";

/** The signal `autonomy dev zombie` sends the running `autonomy dev`: start the old primary again. */
export const RESTART_OLD_PRIMARY_SIGNAL = "SIGUSR2";

const PROMOTE_HELP = `Usage: autonomy dev promote [--crash-primary] [--data-dir DIR]

Seed 004 §2 against the running local cluster: promotes the standby
(pg_promote). The old primary keeps running unless --crash-primary kills it
first (SIGKILL of its postmaster, a lost primary); either way the agents and
the coordinator follow the promoted server, and a primary left running is a
zombie the coordinator contains. Then stamp and verify as seed 004 §3-5 say.

Flags:
  --crash-primary   kill the primary first (then "autonomy dev zombie" starts it again)
  --data-dir DIR    where autonomy dev runs (default .autonomy)
  --help            show this help
`;

const ZOMBIE_HELP = `Usage: autonomy dev zombie [--data-dir DIR]

Starts the old primary again after "autonomy dev promote --crash-primary":
writable on its old timeline while the promoted server leads, the zombie of
seed 004's watch-outs. The coordinator contains it (ha.database.contained):
no term opens there and its assert_epoch() refuses every epoch.

Flags:
  --data-dir DIR    where autonomy dev runs (default .autonomy)
  --help            show this help
`;

/** `autonomy dev promote` and `autonomy dev zombie`: a database failover on the local cluster. */
export async function devDatabaseCommand(sub: "promote" | "zombie", argv: readonly string[]): Promise<number> {
  const { values } = parseFlags(`dev ${sub}`, [...argv], {
    "crash-primary": { type: "boolean" },
    "data-dir": { type: "string" },
    help: { type: "boolean" },
  });
  if (values.help) {
    process.stdout.write(sub === "promote" ? PROMOTE_HELP : ZOMBIE_HELP);
    return ExitCode.Ok;
  }
  if (sub === "zombie" && values["crash-primary"]) throw new UsageError("--crash-primary belongs to \"autonomy dev promote\"", "dev zombie");
  const dev = readDescription(resolve(values["data-dir"] ?? ".autonomy"), sub);
  const primary = dev.postgres.find((p) => p.role === "primary");
  const standby = dev.postgres.find((p) => p.role === "standby");
  if (!primary || !standby) throw refused(sub, "dev.json names no primary and standby; restart autonomy dev");
  return sub === "promote" ? promote(dev, primary, standby, values["crash-primary"] === true) : zombie(dev, primary);
}

type Server = DevDescription["postgres"][number];

async function promote(dev: DevDescription, primary: Server, standby: Server, crash: boolean): Promise<number> {
  if (!(await inRecovery(standby.url))) throw refused("promote", `the standby (port ${standby.port}) is not in recovery: it was promoted already; restart autonomy dev for a fresh pair`);
  if (crash) {
    const pid = postmasterPid(primary);
    if (pid !== undefined) {
      process.kill(pid, "SIGKILL");
      await waitFor(() => !alive(pid), { timeoutMs: 10_000, what: `the primary's postmaster (pid ${pid}) to exit` });
      process.stdout.write(`killed the primary's postmaster (pid ${pid}, port ${primary.port}): the primary is lost\n`);
    } else {
      process.stdout.write(`the primary (port ${primary.port}) is not running\n`);
    }
  }
  const c = await connect(standby.url, "promote");
  try {
    const r = await c.query<{ promoted: boolean }>("SELECT pg_promote(true, 60) AS promoted");
    if (!r.rows[0]?.promoted) throw refused("promote", "pg_promote() did not finish within 60s; see the standby's log");
    const tl = await c.query<{ tl: number }>("SELECT timeline_id AS tl FROM pg_control_checkpoint()");
    process.stdout.write(`promoted the standby (port ${standby.port}); it is a primary now (timeline ${tl.rows[0]?.tl ?? "?"} after its first checkpoint)\n`);
  } finally {
    await c.end().catch(() => undefined);
  }
  process.stdout.write(
    [
      crash ? "" : `the old primary (port ${primary.port}) keeps running: a zombie; the coordinator contains it`,
      "next (seed 004 §3-5):",
      `  autonomy db stamp --database-url "${dev.database_url}" --region eu-west-1 --operator "$USER" --reason "region failover"`,
      `  curl -s ${dev.orchestrator_url}/readyz | jq .cluster`,
      `  autonomy audit query --type ha.database.promoted --limit 1`,
      crash ? "  autonomy dev zombie    # start the old primary again, as a zombie" : "",
      "",
    ]
      .filter((l, i, all) => l !== "" || i === all.length - 1)
      .join("\n"),
  );
  return ExitCode.Ok;
}

async function zombie(dev: DevDescription, primary: Server): Promise<number> {
  if (postmasterPid(primary) !== undefined) throw refused("zombie", `the old primary (port ${primary.port}) is running already; "autonomy dev promote --crash-primary" loses it first`);
  if (!alive(dev.pid)) throw refused("zombie", `autonomy dev (pid ${dev.pid}) is not running; start it with "npm start"`);
  process.kill(dev.pid, RESTART_OLD_PRIMARY_SIGNAL);
  await waitFor(async () => (await acceptsConnections(primary.url)) || undefined, {
    timeoutMs: 30_000,
    intervalMs: 100,
    what: `the old primary (port ${primary.port}) to accept connections`,
  }).catch((err: unknown) => {
    throw refused("zombie", `${describeError(err)}; see ${join(dev.data_dir, "logs")}`);
  });
  process.stdout.write(
    `the old primary (port ${primary.port}) runs again, writable on its old timeline: a zombie\n` +
      `the coordinator contains it: autonomy audit query --type ha.database.contained --limit 1\n`,
  );
  return ExitCode.Ok;
}

function readDescription(dataDir: string, sub: string): DevDescription {
  const path = join(dataDir, "dev.json");
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    throw refused(sub, `no running autonomy dev found (${path} is missing); start it with "npm start" or pass --data-dir`);
  }
  return JSON.parse(text) as DevDescription;
}

/** The postmaster's pid from postmaster.pid, while that process lives. */
function postmasterPid(server: Server): number | undefined {
  try {
    const pid = Number(readFileSync(join(server.data_dir, "postmaster.pid"), "utf8").split("\n")[0]);
    return Number.isInteger(pid) && pid > 0 && alive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function connect(url: string, sub: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url, application_name: `autonomy-dev-${sub}`, connectionTimeoutMillis: 5_000 });
  c.on("error", () => undefined);
  try {
    await c.connect();
    return c;
  } catch (err) {
    throw refused(sub, `cannot reach ${url}: ${describeError(err)}`);
  }
}

async function inRecovery(url: string): Promise<boolean> {
  const c = await connect(url, "promote");
  try {
    return (await c.query<{ r: boolean }>("SELECT pg_is_in_recovery() AS r")).rows[0]!.r;
  } finally {
    await c.end().catch(() => undefined);
  }
}

async function acceptsConnections(url: string): Promise<boolean> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1_000 });
  c.on("error", () => undefined);
  try {
    await c.connect();
    await c.query("SELECT 1");
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => undefined);
  }
}

function refused(sub: string, message: string): CliExit {
  return new CliExit({ command: `dev ${sub}`, code: "refused", message, exitCode: ExitCode.Refused });
}

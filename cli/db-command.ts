import { standingLabel } from "../core/authority.js";
import { describeError, toHaError } from "../core/errors.js";
import { silentLogger } from "../core/log.js";
import { resolveSettings, settingsHelp, type SettingSpec } from "../core/settings.js";
import { stampPromotion, type StampResult } from "../db/authority.js";
import { connectDatabase, parseDatabaseUrl, redact } from "../db/connect.js";
import { DatabaseAuthority } from "../db/database-authority.js";
import { DEFAULT_CLUSTER_ID, SchemaName, validateClusterId, validateRegion } from "../db/identifiers.js";
import { closest } from "../core/did-you-mean.js";
import type { CommandModule } from "./commands.js";
import { ExitCode, UsageError } from "./exit-codes.js";
import { CliExit } from "./failure.js";

const stampSpecs: readonly SettingSpec[] = [
  { flag: "database-url", env: "AUTONOMY_DATABASE_URL", kind: "string", required: true, help: "the promoted server; with several hosts, the authoritative one among them is stamped" },
  { flag: "region", env: "AUTONOMY_REGION", kind: "string", required: true, help: "the new writer region, e.g. eu-west-1" },
  { flag: "operator", env: "AUTONOMY_OPERATOR", kind: "string", required: true, help: "who stamps (recorded with the stamp)" },
  { flag: "reason", kind: "string", required: true, help: "why (recorded with the stamp)" },
  { flag: "at-least", kind: "int", default: "0", help: "an epoch seen elsewhere (e.g. on the old primary) the stamp must exceed; at most 1000 above this server's" },
  { flag: "cluster-id", env: "AUTONOMY_CLUSTER_ID", kind: "string", default: DEFAULT_CLUSTER_ID, help: "cluster id" },
  { flag: "schema", env: "AUTONOMY_SCHEMA", kind: "string", default: "public", help: "schema of leadership_state and the epoch functions" },
  { flag: "output", kind: "string", default: "text", help: "text or json" },
];

const SUBCOMMANDS = ["stamp"];

/**
 * `autonomy db stamp`: seed 004 §3 after a promotion. Bumps the writer epoch
 * on the promoted server above every epoch it and the other listed servers
 * confirm, records the region and the operator, and ends any open term, so
 * the old primary keeps the lower epoch. The SQL function it calls,
 * stamp_promotion(), serves any failover tool as a post-promote hook.
 */
export const dbCommand: CommandModule = {
  name: "db",
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub === undefined || sub === "--help" || sub === "-h") {
      process.stdout.write(
        ["Usage: autonomy db stamp --database-url URL --region R --operator O --reason TEXT [flags]", "", "Subcommands:", "  stamp  stamp the promotion epoch on the promoted primary (seed 004 §3)", ""].join("\n"),
      );
      return sub === undefined ? ExitCode.Usage : ExitCode.Ok;
    }
    if (!SUBCOMMANDS.includes(sub)) {
      const hint = closest(sub, SUBCOMMANDS);
      throw new UsageError("db", `unknown subcommand "db ${sub}"${hint ? ` (did you mean "db ${hint}"?)` : ""}`);
    }
    return stamp(rest);
  },
};

async function stamp(argv: readonly string[]): Promise<number> {
  const { settings, help } = resolveSettings("db stamp", stampSpecs, argv);
  if (help) {
    process.stdout.write(
      settingsHelp(
        "autonomy db stamp --database-url URL --region R --operator O --reason TEXT",
        "Stamps the promotion epoch on a promoted primary: the writer epoch rises above every epoch the\nlisted servers confirm, any open term ends, and the region and operator are recorded. The old\nprimary keeps the lower epoch; a standby or a fenced server refuses the stamp.",
        stampSpecs,
      ),
    );
    return ExitCode.Ok;
  }
  const output = settings.string("output");
  if (output !== "text" && output !== "json") throw new UsageError("db stamp", `--output must be text or json, got "${output}"`);
  const schema = new SchemaName(settings.string("schema"));
  const clusterId = validateClusterId(settings.string("cluster-id"));
  const region = validateRegion(settings.string("region"));
  const atLeast = settings.number("at-least");
  if (atLeast < 0) throw new UsageError("db stamp", "--at-least must not be negative");
  const target = parseDatabaseUrl(settings.string("database-url"), "--database-url");
  // Look at every listed server: the stamp goes on the authoritative primary,
  // above every epoch any of them confirms (the old primary's included).
  const authority = new DatabaseAuthority({ target, schema, clusterId, nodeId: "autonomy-db-stamp", connectTimeoutMs: 5_000, log: silentLogger(), changed: () => undefined });
  let result: StampResult;
  let host: string;
  try {
    await authority.look();
    let client;
    if (target.hosts.length > 1) {
      const primary = authority.authoritativeHost();
      if (!primary) {
        const seen = authority.hostReadings.map((h) => `${h.host}: ${h.reachable ? (h.server.inRecovery ? "standby" : h.server.fenced ? "fenced" : `superseded (${standingLabel(h.server)})`) : h.error}`);
        throw refused(`no authoritative writable primary among ${target.hosts.join(", ")}: ${seen.join("; ")}; nothing was stamped`);
      }
      host = primary.host;
      client = await authority.clientFor(primary.url);
    } else {
      host = target.hosts[0]!;
      client = await connectDatabase(target, { applicationName: "autonomy-db-stamp", connectTimeoutMs: 5_000 }, () => undefined);
    }
    try {
      result = await stampPromotion(client, schema, clusterId, {
        region,
        actor: settings.string("operator"),
        reason: settings.string("reason"),
        atLeast: Math.max(atLeast, authority.highestEpochSeen),
      });
    } finally {
      if (target.hosts.length === 1) await client.end().catch(() => undefined);
    }
  } catch (err) {
    throw asStampFailure(err, redact(settings.string("database-url")));
  } finally {
    await authority.close();
  }
  if (output === "json") {
    process.stdout.write(
      `${JSON.stringify({ stamped_epoch: result.stampedEpoch, system_identifier: result.systemIdentifier, timeline: result.timeline, host, region, closed_epochs: result.closed })}\n`,
    );
  } else {
    process.stdout.write(
      [
        `stamped promotion epoch ${result.stampedEpoch} on ${host} (system ${result.systemIdentifier}, timeline ${result.timeline}); writer region ${region || "not set"}`,
        result.closed.length > 0 ? `ended open term(s): ${result.closed.join(", ")}` : "no term was open",
        `the next term opens above epoch ${result.stampedEpoch}; the old primary keeps the lower epoch`,
        "",
      ].join("\n"),
    );
  }
  return ExitCode.Ok;
}

function refused(message: string): CliExit {
  return new CliExit({ command: "db stamp", code: "refused", message, exitCode: ExitCode.Refused });
}

/** The server's refusals (standby, fenced, a bound) keep their words and exit 3; the rest exit 1. */
function asStampFailure(err: unknown, url: string): unknown {
  if (err instanceof CliExit) return err;
  const code = (err as { code?: string }).code;
  if (code === "AH003" || code === "AH004" || code === "AH005") return refused(`${(err as Error).message}; nothing was stamped`);
  return new CliExit({ command: "db stamp", code: "failed", message: `cannot stamp ${url}: ${describeError(toHaError(err))}`, exitCode: ExitCode.Failed });
}

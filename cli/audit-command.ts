import type { ClientCredentials } from "../rpc/client.js";
import { stat } from "node:fs/promises";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { parseDuration } from "../core/duration.js";
import { describeError } from "../core/errors.js";
import type { CommandModule } from "./commands.js";
import { intFlag } from "./args.js";
import { adminClient, orchestratorUrl, rpcFailure } from "./admin-client.js";
import { ExitCode, UsageError } from "./exit-codes.js";
import { readAuditEvents } from "../coordinator/audit/audit-reader.js";
import { group } from "./ha-group.js";
import { CliExit, emit, runLeaf, type LeafSpec } from "./ha-options.js";
import { auditFromWire, auditText, type AuditRecord } from "./output/audit.js";

/*
 * `autonomy audit query` (seed 002 §5): from the audit files themselves
 * (--audit-dir / AUTONOMY_AUDIT_DIR), which works with no coordinator up, or
 * through QueryAudit on --orchestrator-url.
 */

const TIMEOUT_MS = 10_000;
const DIR_ENV = "AUTONOMY_AUDIT_DIR";
const URL_ENV = "AUTONOMY_ORCHESTRATOR_URL";

const options = {
  "audit-dir": { type: "string" },
  category: { type: "string" },
  type: { type: "string" },
  since: { type: "string" },
  limit: { type: "string" },
} as const;

const spec = {
  command: "audit query",
  usage: "[--audit-dir DIR | --orchestrator-url URL] [--category ha] [--type TYPE] [--since TIME] [--limit N] [--output text|json]",
  summary: "List audit events (failovers, split-brain findings and recoveries, admin actions with operator and reason), oldest first.",
  options,
  flags: [
    ["--audit-dir DIR", `read the coordinator's *.jsonl audit files directly (env ${DIR_ENV})`],
    ["--category NAME", "only this category, e.g. ha"],
    ["--type TYPE", "only this exact type, e.g. ha.failover.completed or ha.split_brain.recovered"],
    ["--since TIME", "only events at or after TIME: an ISO time (2026-03-18T10:00:00Z) or a duration ago (30m, 2h)"],
    ["--limit N", "at most the N newest matching events (default 100)"],
  ],
  notes: [
    `Source: --audit-dir, else --orchestrator-url, else ${DIR_ENV}, else ${URL_ENV} (default http://127.0.0.1:8890).`,
  ],
} as const satisfies LeafSpec<typeof options>;

function sinceOf(raw: string | undefined, now: Date): Date | undefined {
  if (raw === undefined || raw === "") return undefined;
  if (/^\s*\d+(\.\d+)?\s*(ms|s|m|h)\s*$/.test(raw)) return new Date(now.getTime() - parseDuration(raw, "--since"));
  const t = Date.parse(raw);
  if (Number.isNaN(t)) {
    throw new UsageError(`--since "${raw}" is neither an ISO time (2026-03-18T10:00:00Z) nor a duration (30m, 2h)`, spec.command);
  }
  return new Date(t);
}

interface AuditFilter {
  readonly category: string | undefined;
  readonly type: string | undefined;
  readonly since: Date | undefined;
  readonly limit: number;
}

async function fromDir(dir: string, filter: AuditFilter): Promise<AuditRecord[]> {
  let result;
  try {
    if (!(await stat(dir)).isDirectory()) throw new Error("not a directory");
    result = await readAuditEvents(dir, filter);
  } catch (err) {
    const message = `cannot read audit dir ${dir}: ${describeError(err)}; check --audit-dir / ${DIR_ENV}`;
    throw new CliExit({ command: spec.command, code: "failed", message, exitCode: ExitCode.Failed });
  }
  if (result.files === 0) process.stderr.write(`autonomy ${spec.command}: no *.jsonl files in ${dir}\n`);
  if (result.skippedLines > 0) process.stderr.write(`autonomy ${spec.command}: skipped ${result.skippedLines} line(s) that are not JSON\n`);
  return result.events;
}

async function fromServer(urlFlag: string | undefined, filter: AuditFilter, credentials: ClientCredentials): Promise<AuditRecord[]> {
  const url = orchestratorUrl(spec.command, urlFlag, credentials);
  const { events } = await adminClient(url, TIMEOUT_MS, credentials)
    .queryAudit({
      category: filter.category ?? "",
      type: filter.type ?? "",
      since: filter.since ? timestampFromDate(filter.since) : undefined,
      limit: filter.limit,
    })
    .catch((err: unknown) => {
      throw rpcFailure(err, { command: spec.command, url, timeoutMs: TIMEOUT_MS, mutating: false });
    });
  return events.map(auditFromWire);
}

const query = {
  name: "query",
  summary: "list audit events by category, type and time",
  run: (argv: string[]) =>
    runLeaf(spec, argv, async ({ values, output, env, credentials }) => {
      const filter: AuditFilter = {
        category: values.category || undefined,
        type: values.type || undefined,
        since: sinceOf(values.since, new Date()),
        limit: intFlag(spec.command, "limit", values.limit, 100, 1),
      };
      // An explicit flag beats an environment variable, whichever source it names.
      const dir = values["audit-dir"] ?? (values["orchestrator-url"] === undefined ? env[DIR_ENV] || undefined : undefined);
      const events = dir !== undefined ? await fromDir(dir, filter) : await fromServer(values["orchestrator-url"], filter, credentials);
      if (output === "text" && events.length === 0) {
        process.stderr.write(`autonomy ${spec.command}: no matching audit events\n`);
        return ExitCode.Ok;
      }
      emit(output, () => auditText(events), () => events);
      return ExitCode.Ok;
    }),
};

const audit = group("audit", "query the audit log", "The audit log: every leadership change, split-brain finding and admin action, with operator and reason.", [query]);

export const auditCommand: CommandModule = { name: "audit", run: (argv) => audit.run(argv) };

import { parseFlags, type OptionSpec } from "./args.js";
import { ExitCode, UsageError } from "./exit-codes.js";
import { CliExit, writeFailure } from "./failure.js";
import { jsonText, textOf } from "./output/format.js";
import type { ClientCredentials } from "../rpc/client.js";
import { loadClientTls } from "../rpc/auth/tls.js";
import { validateClusterId } from "../db/identifiers.js";
import { useCluster } from "./admin-client.js";

export { CliExit } from "./failure.js";

/*
 * What every `autonomy ha …` and `autonomy audit …` leaf shares: --help,
 * --output text|json, --orchestrator-url, the operator/reason rule for
 * mutations, and one way to end with a one-line error (a JSON object with
 * --output json) and an exit code.
 */

export type Output = "text" | "json";

export const commonOptions = {
  help: { type: "boolean", short: "h" },
  output: { type: "string", short: "o" },
  "orchestrator-url": { type: "string" },
  cluster: { type: "string" },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
  "tls-ca": { type: "string" },
  token: { type: "string" },
} as const satisfies OptionSpec;

export interface LeafSpec<O extends OptionSpec> {
  /** e.g. "ha failover trigger" */
  readonly command: string;
  /** Flags after the command, e.g. "--operator NAME --reason TEXT [--force]". */
  readonly usage: string;
  readonly summary: string;
  readonly options: O;
  /** [flag as shown, what it does], in the order --help lists them; common flags are added. */
  readonly flags: readonly (readonly [string, string])[];
  readonly notes?: readonly string[];
  /** Leaves that never talk to the orchestrator leave --orchestrator-url out of their help. */
  readonly noUrl?: boolean;
}

export function leafHelp<O extends OptionSpec>(spec: LeafSpec<O>): string {
  const rows: (readonly [string, string])[] = [
    ...spec.flags,
    ...(spec.noUrl
      ? []
      : ([
          ["--orchestrator-url URL", "coordinator or any agent, or every coordinator comma-separated (env AUTONOMY_ORCHESTRATOR_URL; default http://127.0.0.1:8890)"],
          ["--cluster ID", "the cluster, when the coordinators serve several (env AUTONOMY_CLUSTER_ID)"],
          ["--tls-cert/--tls-key/--tls-ca FILE", "mTLS client certificate, key and CA, PEM (env AUTONOMY_TLS_CERT/_KEY/_CA); URLs are https://"],
          ["--token TOKEN", "bearer token with the read or admin role (env AUTONOMY_TOKEN)"],
        ] as const)),
    ["-o, --output text|json", "output format (default text)"],
    ["-h, --help", "show this help"],
  ];
  const width = Math.max(...rows.map(([f]) => f.length));
  return textOf([
    `Usage: autonomy ${spec.command} ${spec.usage}`.trimEnd(),
    "",
    spec.summary,
    "",
    "Flags:",
    ...rows.map(([f, d]) => `  ${f.padEnd(width)}  ${d}`),
    ...(spec.notes && spec.notes.length > 0 ? ["", ...spec.notes] : []),
    "",
    "Exit codes: 0 ok, 1 failed, 2 usage, 3 refused by a precondition (the runbooks' 409).",
    "With --output json, an error is one JSON object on stderr: {\"error\":{\"code\",\"exit_code\",\"message\",\"command\"}}.",
  ]);
}

/** Parsed flag values: strings, booleans for boolean flags, undefined when absent. */
export type FlagValues<O extends OptionSpec> = {
  readonly [K in keyof O]?: O[K] extends { type: "boolean" } ? boolean : string;
};

export interface LeafContext<O extends OptionSpec> {
  readonly values: FlagValues<O & typeof commonOptions>;
  readonly output: Output;
  readonly env: NodeJS.ProcessEnv;
  /** What the command proves itself with (TLS flags, --token, or their env vars). */
  readonly credentials: ClientCredentials;
}

/**
 * Parses flags (usage errors propagate to main, exit 2), prints --help, and
 * turns a thrown CliExit into its line (or JSON object) on stderr and its exit code.
 */
export async function runLeaf<O extends OptionSpec>(
  spec: LeafSpec<O>,
  argv: readonly string[],
  body: (ctx: LeafContext<O>) => Promise<number>,
): Promise<number> {
  const values = parseFlags(spec.command, argv, { ...commonOptions, ...spec.options }).values as FlagValues<O & typeof commonOptions>;
  if (values.help) {
    process.stdout.write(leafHelp(spec));
    return ExitCode.Ok;
  }
  const output = values.output ?? "text";
  if (output !== "text" && output !== "json") throw new UsageError(`--output must be text or json, got "${output}"`, spec.command);
  try {
    const credentials = spec.noUrl ? {} : cliCredentials(spec.command, values as Record<string, string | undefined>);
    if (!spec.noUrl) useCluster(clusterOf(spec.command, (values as Record<string, string | undefined>).cluster));
    return await body({ values, output, env: process.env, credentials });
  } catch (err) {
    if (err instanceof CliExit) return writeFailure(err.failure);
    throw err;
  }
}

/** Writes a result: text lines, or pretty JSON (the runbooks pipe it to jq). */
export function emit(output: Output, text: () => string[], json: () => unknown): void {
  process.stdout.write(output === "json" ? jsonText(json()) : textOf(text()));
}

export const CLUSTER_ENV = "AUTONOMY_CLUSTER_ID";

/** --cluster, else AUTONOMY_CLUSTER_ID, else none (the coordinator's only cluster). */
function clusterOf(command: string, flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const raw = (flag ?? env[CLUSTER_ENV] ?? "").trim();
  if (raw === "") return "";
  try {
    return validateClusterId(raw);
  } catch (err) {
    throw new UsageError(`--cluster: ${err instanceof Error ? err.message : String(err)}`, command);
  }
}

export const TLS_ENV = { cert: "AUTONOMY_TLS_CERT", key: "AUTONOMY_TLS_KEY", ca: "AUTONOMY_TLS_CA" } as const;
export const TOKEN_ENV = "AUTONOMY_TOKEN";

/** --tls-cert/--tls-key/--tls-ca and --token, else their env vars: what the CLI proves itself with. */
export function cliCredentials(
  command: string,
  values: Readonly<Record<string, string | undefined>>,
  env: NodeJS.ProcessEnv = process.env,
): ClientCredentials {
  try {
    const tls = loadClientTls({
      cert: values["tls-cert"] ?? (env[TLS_ENV.cert] || undefined),
      key: values["tls-key"] ?? (env[TLS_ENV.key] || undefined),
      ca: values["tls-ca"] ?? (env[TLS_ENV.ca] || undefined),
    });
    const token = (values.token ?? env[TOKEN_ENV] ?? "").trim() || undefined;
    return { tls, token };
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err), command);
  }
}

/** "autonomy-cli alice@host": recorded by the server next to the operator the user typed. */
export const OPERATOR_ENV = "AUTONOMY_OPERATOR";

/**
 * A mutation says who asks and why, for the audit log; a missing one is
 * refused before anything is sent, with one line naming the flag and env var.
 */
export function operatorAndReason(
  command: string,
  values: { operator?: string | undefined; reason?: string | undefined },
  env: NodeJS.ProcessEnv,
): { operator: string; reason: string } {
  const operator = (values.operator ?? env[OPERATOR_ENV] ?? "").trim();
  const reason = (values.reason ?? "").trim();
  const usage = (message: string) => new CliExit({ command, code: "usage", message, exitCode: ExitCode.Usage });
  if (!operator && !reason) throw usage(`--operator (or ${OPERATOR_ENV}) and --reason are required: the audit log records who asked and why`);
  if (!operator) throw usage(`--operator is required (or set ${OPERATOR_ENV}): the audit log records who asked`);
  if (!reason) throw usage("--reason is required: say why; it goes in the audit log");
  return { operator, reason };
}

/** Flags of every mutation, for `options` and --help. */
export const mutationOptions = {
  operator: { type: "string" },
  reason: { type: "string" },
} as const satisfies OptionSpec;

export const mutationFlagHelp = [
  ["--operator NAME", "who asks; recorded in the audit log (env AUTONOMY_OPERATOR; required)"],
  ["--reason TEXT", "why; recorded in the audit log (required)"],
] as const;

import { readFileSync } from "node:fs";
import { parseDuration } from "./duration.js";
import { describeError } from "./errors.js";
import { parseFlags } from "./flags.js";
import { UsageError } from "./usage-error.js";

/**
 * Settings of a long-running process (agent, coordinator): each comes from a
 * flag, else its environment variable, else the --config file (JSON, keys are
 * the flag names), else its default. One table drives parsing, `--help` and
 * docs/configuration.md, so the three cannot disagree.
 */
export type SettingKind = "string" | "duration" | "int" | "number" | "bool";

export interface SettingSpec {
  readonly flag: string;
  readonly env?: string;
  readonly kind: SettingKind;
  readonly default?: string;
  readonly required?: boolean;
  readonly help: string;
}

export type SettingValue = string | number | boolean | undefined;

export class Settings {
  constructor(
    private readonly values: ReadonlyMap<string, SettingValue>,
    readonly sources: ReadonlyMap<string, string>,
  ) {}

  string(flag: string): string {
    const v = this.values.get(flag);
    return typeof v === "string" ? v : "";
  }
  optionalString(flag: string): string | undefined {
    const v = this.values.get(flag);
    return typeof v === "string" && v !== "" ? v : undefined;
  }
  number(flag: string): number {
    const v = this.values.get(flag);
    if (typeof v !== "number") throw new Error(`setting --${flag} is not numeric`);
    return v;
  }
  bool(flag: string): boolean {
    return this.values.get(flag) === true;
  }
}

const truthy = new Set(["1", "true", "yes", "on"]);
const falsy = new Set(["0", "false", "no", "off", ""]);

function convert(command: string, spec: SettingSpec, raw: string | boolean | number, source: string): SettingValue {
  const where = source === "flag" ? `--${spec.flag}` : source === "env" ? `${spec.env}` : `"${spec.flag}" in the config file`;
  try {
    switch (spec.kind) {
      case "string":
        return String(raw);
      case "bool": {
        if (typeof raw === "boolean") return raw;
        const s = String(raw).toLowerCase();
        if (truthy.has(s)) return true;
        if (falsy.has(s)) return false;
        throw new Error(`expected true or false, got "${raw}"`);
      }
      case "duration":
        return parseDuration(typeof raw === "boolean" ? String(raw) : raw, where);
      case "int":
      case "number": {
        const n = typeof raw === "number" ? raw : Number(String(raw).trim());
        if (String(raw).trim() === "" || !Number.isFinite(n) || (spec.kind === "int" && !Number.isInteger(n))) {
          throw new Error(`expected ${spec.kind === "int" ? "a whole number" : "a number"}, got "${raw}"`);
        }
        return n;
      }
    }
  } catch (err) {
    throw new UsageError(`${where}: ${describeError(err).replace(`${where} `, "")}`, command);
  }
}

export function resolveSettings(
  command: string,
  specs: readonly SettingSpec[],
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): { settings: Settings; help: boolean } {
  const options: Record<string, { type: "string" | "boolean" }> = { help: { type: "boolean" }, config: { type: "string" } };
  for (const s of specs) {
    options[s.flag] = { type: s.kind === "bool" ? "boolean" : "string" };
    // node:util parseArgs has no --no-X form; a switch that defaults to on needs one.
    if (s.kind === "bool") options[`no-${s.flag}`] = { type: "boolean" };
  }
  const { values: flags } = parseFlags(command, argv, options);
  if (flags.help) return { settings: new Settings(new Map(), new Map()), help: true };

  const file = readConfigFile(command, (flags.config as string | undefined) ?? env.AUTONOMY_CONFIG, specs);
  const values = new Map<string, SettingValue>();
  const sources = new Map<string, string>();
  for (const spec of specs) {
    if (spec.kind === "bool" && flags[spec.flag] && flags[`no-${spec.flag}`]) {
      throw new UsageError(`--${spec.flag} and --no-${spec.flag} contradict each other`, command);
    }
    const fromFlag = flags[`no-${spec.flag}`] ? false : (flags[spec.flag] as string | boolean | undefined);
    const fromEnv = spec.env ? env[spec.env] : undefined;
    const fromFile = file[spec.flag];
    const picked: [string | number | boolean, string] | undefined =
      fromFlag !== undefined ? [fromFlag, "flag"]
      : fromEnv !== undefined && fromEnv !== "" ? [fromEnv, "env"]
      : fromFile !== undefined ? [fromFile, "file"]
      : spec.default !== undefined ? [spec.default, "default"]
      : undefined;
    let value: SettingValue = spec.kind === "bool" ? false : undefined;
    if (picked) {
      value = convert(command, spec, picked[0], picked[1]);
      sources.set(spec.flag, picked[1]);
    }
    if (spec.required && (value === undefined || value === "")) {
      const how = [`--${spec.flag}`, spec.env, `"${spec.flag}" in --config`].filter(Boolean).join(", ");
      throw new UsageError(`--${spec.flag} is required (set ${how})`, command);
    }
    values.set(spec.flag, value);
  }
  return { settings: new Settings(values, sources), help: false };
}

function readConfigFile(command: string, path: string | undefined, specs: readonly SettingSpec[]): Record<string, string | number | boolean> {
  if (!path) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new UsageError(`cannot read config file ${path}: ${describeError(err)}`, command);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new UsageError(`config file ${path} must hold a JSON object of flag names to values`, command);
  }
  const known = new Set(specs.map((s) => s.flag));
  for (const [key, value] of Object.entries(parsed)) {
    if (!known.has(key)) throw new UsageError(`config file ${path}: unknown setting "${key}"; known: ${[...known].join(", ")}`, command);
    if (!["string", "number", "boolean"].includes(typeof value)) {
      throw new UsageError(`config file ${path}: "${key}" must be a string, number or boolean`, command);
    }
  }
  return parsed as Record<string, string | number | boolean>;
}

/** `--help` text for a process command, from its settings table. */
export function settingsHelp(usage: string, summary: string, specs: readonly SettingSpec[]): string {
  const rows = specs.map((s) => {
    const name = s.kind === "bool" && s.default === "true" ? `--[no-]${s.flag}` : `--${s.flag}`;
    const flag = `${name}${s.kind === "bool" ? "" : ` ${s.kind === "duration" ? "DURATION" : s.kind === "string" ? "VALUE" : "N"}`}`;
    const extra = [s.env ? `env ${s.env}` : "", s.required ? "required" : s.default !== undefined ? `default ${s.default}` : ""]
      .filter(Boolean)
      .join("; ");
    return `  ${flag.padEnd(34)} ${s.help}${extra ? ` (${extra})` : ""}`;
  });
  return [
    `Usage: ${usage}`,
    "",
    summary,
    "",
    "Flags:",
    ...rows,
    `  ${"--config FILE".padEnd(34)} JSON file of flag names to values (env AUTONOMY_CONFIG)`,
    `  ${"--help".padEnd(34)} show this help`,
    "",
    "Durations are like 500ms, 5s or 1m. A flag beats its env var, which beats the config file.",
    "",
  ].join("\n");
}

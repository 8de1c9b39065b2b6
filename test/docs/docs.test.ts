import { describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { agentConfig, agentSettings } from "../../agent/config.js";
import { commands } from "../../cli/commands.js";
import { resolveSettings, type SettingSpec } from "../../core/settings.js";
import { ExitCode } from "../../cli/exit-codes.js";
import { AuditType } from "../../coordinator/audit/audit-event.js";
import { coordinatorConfig, coordinatorSettings } from "../../coordinator/settings.js";

/*
 * Keeps docs/ and deploy/ true to the code: every setting documented with its
 * env var and default, every `autonomy …` command line runnable as written,
 * every AUTONOMY_* variable, metric, audit type and HTTP path one that exists.
 */

const ROOT = new URL("../../", import.meta.url).pathname;
const BIN = join(ROOT, "bin/autonomy.js");
const read = (path: string) => readFileSync(join(ROOT, path), "utf8");

const docFiles = readdirSync(join(ROOT, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`);
const deployFiles = ["deploy/systemd", "deploy/kubernetes"].flatMap((dir) =>
  existsSync(join(ROOT, dir)) ? readdirSync(join(ROOT, dir)).map((f) => `${dir}/${f}`) : [],
);

/** The TypeScript sources of the product (not tests), to check names against. */
const sourceText = ["agent", "coordinator", "cli", "core", "db", "rpc", "pgcluster"]
  .flatMap((dir) => (readdirSync(join(ROOT, dir), { recursive: true }) as string[]).map((f) => join(dir, f)))
  .filter((f) => f.endsWith(".ts") && !f.endsWith(".spec.ts"))
  .map(read)
  .join("\n");

/** The text under a `## heading` up to the next `## `. */
function section(markdown: string, heading: string): string {
  const lines = markdown.split("\n");
  const start = lines.findIndex((l) => l.trim() === heading);
  if (start < 0) throw new Error(`no section "${heading}"`);
  const end = lines.findIndex((l, i) => i > start && l.startsWith("## "));
  return lines.slice(start, end < 0 ? undefined : end).join("\n");
}

describe("docs/configuration.md", () => {
  const doc = read("docs/configuration.md");

  it.each([
    { heading: "## `autonomy agent`", specs: agentSettings },
    { heading: "## `autonomy coordinator`", specs: coordinatorSettings },
  ])("has a row for every setting of $heading with its env var and default", ({ heading, specs }) => {
    const text = section(doc, heading);
    const rows = text.split("\n").filter((l) => l.startsWith("|"));
    for (const spec of specs as readonly SettingSpec[]) {
      const row = rows.find((r) => r.startsWith(`| \`--${spec.flag}\` |`));
      expect(row, `--${spec.flag} in ${heading}`).toBeDefined();
      if (spec.env) expect(row, `--${spec.flag}`).toContain(`\`${spec.env}\``);
      const shown = spec.required ? "required" : spec.default !== undefined ? `\`${spec.default}\`` : spec.kind === "bool" ? "`false`" : "unset";
      expect(row, `--${spec.flag} default`).toContain(shown);
    }
    expect(text).toContain("`--config`");
    expect(text).toContain("`AUTONOMY_CONFIG`");
  });

  it("documents the operator CLI's environment and every exit code", () => {
    const cli = section(doc, "## The operator CLI");
    for (const env of ["AUTONOMY_ORCHESTRATOR_URL", "AUTONOMY_OPERATOR", "AUTONOMY_AUDIT_DIR"]) expect(cli).toContain(`\`${env}\``);
    for (const code of Object.values(ExitCode)) expect(cli).toMatch(new RegExp(`^\\| ${code} \\|`, "m"));
  });

  it("shows config files that the agent and the coordinator accept as they are", () => {
    const blocks = [...doc.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(blocks.length).toBeGreaterThanOrEqual(2);
    const dir = mkdtempSync(join(tmpdir(), "autonomy-docs-"));
    try {
      blocks.forEach((block, i) => {
        const file = join(dir, `config-${i}.json`);
        writeFileSync(file, block);
        const isAgent = "node-id" in (JSON.parse(block) as object);
        const specs = isAgent ? agentSettings : coordinatorSettings;
        const { settings } = resolveSettings(isAgent ? "agent" : "coordinator", specs, ["--config", file], {});
        expect(() => (isAgent ? agentConfig(settings) : coordinatorConfig(settings)), `config block ${i + 1}`).not.toThrow();
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** One `autonomy …` invocation found in a document. */
interface Invocation {
  readonly file: string;
  readonly path: string;
  readonly flags: readonly string[];
  readonly line: string;
}

/** The commands the `autonomy` executable has, for telling commands from prose in deploy files. */
const TOP_LEVEL = commands.map((c) => c.name);

/** Code in a markdown file: fenced blocks and inline code spans, each span on a line of its own. */
function markdownCode(text: string): string {
  const fenced = [...text.matchAll(/^```[^\n]*\n([\s\S]*?)^```/gm)].map((m) => m[1]!);
  const prose = text.replace(/^```[^\n]*\n[\s\S]*?^```/gm, "");
  const inline = [...prose.matchAll(/`([^`]+)`/g)].map((m) => m[1]!.replace(/\s*\n\s*/g, " "));
  return [...fenced, ...inline].join("\n");
}

/**
 * Every `autonomy …` invocation: the command path (words after `autonomy`
 * until the first flag, e.g. "ha failover trigger") and the flags it passes.
 */
function invocations(file: string, text: string, anyCommand: boolean): Invocation[] {
  const out: Invocation[] = [];
  // A shell line continued with "\" (or a folded YAML line starting with a flag) is one command.
  const joined = text.replace(/\\\n\s*/g, " ").replace(/\n\s+(?=--[a-z])/g, " ");
  for (const m of joined.matchAll(/(?:^|[\s'"(/$])autonomy[ \t]+([a-z][^\n]*)/gm)) {
    // Stop at what the shell would not pass to autonomy.
    const line = m[1]!.split(/\s(?:\||\|\||&&|;|#|2?>)/)[0]!;
    const tokens = line.split(/\s+/).map((t) => t.replace(/^["']|["'),.:]+$/g, "")).filter(Boolean);
    if (!anyCommand && !TOP_LEVEL.includes(tokens[0]!)) continue;
    const words: string[] = [];
    for (const t of tokens) {
      if (!/^[a-z][a-z-]*$/.test(t) || words.length === 3) break;
      words.push(t);
    }
    const flags = tokens.filter((t) => /^--[a-z]/.test(t)).map((t) => t.replace(/=.*$/, ""));
    out.push({ file, path: words.join(" "), flags, line: `autonomy ${line}`.trim() });
  }
  return out;
}

function runHelp(path: string): Promise<{ code: number; stdout: string }> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("AUTONOMY_")) env[k] = v;
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...path.split(" "), "--help"], { env, timeout: 30_000 }, (err, stdout) => {
      resolve({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout });
    });
  });
}

describe("command lines in docs/ and deploy/", () => {
  // In the docs every `autonomy` in code is a command; in deploy files, comments also use the word in prose.
  const found = [
    ...docFiles.flatMap((f) => invocations(f, markdownCode(read(f)), true)),
    ...deployFiles.flatMap((f) => invocations(f, read(f), false)),
  ];

  it("finds the runbook commands in the operating guides", () => {
    const paths = new Set(found.filter((i) => i.file.startsWith("docs/operating-")).map((i) => i.path));
    for (const p of ["ha status", "ha failover trigger", "ha split-brain detect", "ha split-brain recover", "ha pause", "ha resume", "ha history", "audit query"]) {
      expect(paths, p).toContain(p);
    }
  });

  it("uses only commands and flags that exist", async () => {
    const paths = [...new Set(found.map((i) => i.path))];
    const help = new Map<string, { code: number; stdout: string }>();
    // A few at a time: each is a whole Node process.
    for (let i = 0; i < paths.length; i += 4) {
      const batch = paths.slice(i, i + 4);
      const results = await Promise.all(batch.map(runHelp));
      batch.forEach((p, j) => help.set(p, results[j]!));
    }
    for (const inv of found) {
      const h = help.get(inv.path)!;
      const where = `${inv.file}: ${inv.line}`;
      expect(h.code, where).toBe(0);
      expect(h.stdout.startsWith(`Usage: autonomy ${inv.path}`), where).toBe(true);
      for (const flag of inv.flags) expect(h.stdout, `${flag} in ${where}`).toMatch(new RegExp(`(^|[\\s,\\[])${flag}(?![a-z-])`, "m"));
    }
  });
});

describe("names used in docs/ and deploy/", () => {
  const texts = [...docFiles, ...deployFiles].map((f) => ({ f, text: read(f) }));
  /** "name (file)" for every match of `pattern` that `exists` rejects. */
  const missing = (pattern: RegExp, exists: (name: string) => boolean) =>
    texts.flatMap(({ f, text }) => [...text.matchAll(pattern)].map((m) => m[0]).filter((n) => !exists(n)).map((n) => `${n} (${f})`));

  it("mentions only AUTONOMY_* variables that the code reads", () => {
    expect(missing(/\bAUTONOMY_[A-Z0-9_]+\b/g, (n) => new RegExp(`\\b${n}\\b`).test(sourceText))).toEqual([]);
  });

  it("mentions only metrics that exist", () => {
    expect(missing(/\bautonomy_(?:ha|agent|replication|local)_[a-z_]+\b/g, (n) => sourceText.includes(n))).toEqual([]);
  });

  it("mentions only audit event types that the coordinator writes", () => {
    const types = new Set<string>(Object.values(AuditType));
    expect(missing(/\bha\.[a-z_]+\.[a-z_]+\b/g, (n) => types.has(n))).toEqual([]);
  });

  it("mentions only HTTP paths that are served", () => {
    expect(missing(/\/v1\/health\/[a-z-]+|\/healthz\b|\/readyz\b/g, (n) => sourceText.includes(`"${n}"`))).toEqual([]);
  });
});

describe("deploy/", () => {
  const agentEnv = new Set(agentSettings.map((s) => s.env));
  const coordinatorEnv = new Set(coordinatorSettings.map((s) => s.env));
  const envNames = (text: string) => [...text.matchAll(/\bAUTONOMY_[A-Z0-9_]+\b/g)].map((m) => m[0]);

  it("has systemd units that run autonomy agent and autonomy coordinator, resigning on SIGTERM", () => {
    const agent = read("deploy/systemd/autonomy-agent.service");
    const coordinator = read("deploy/systemd/autonomy-coordinator.service");
    expect(agent).toMatch(/^ExecStart=\S*autonomy agent\b/m);
    expect(coordinator).toMatch(/^ExecStart=\S*autonomy coordinator\b/m);
    for (const unit of [agent, coordinator]) {
      for (const line of ["Restart=on-failure", "KillSignal=SIGTERM", "NoNewPrivileges=yes", "ProtectSystem=strict"]) expect(unit).toMatch(new RegExp(`^${line}$`, "m"));
      expect(unit).toMatch(/^User=\S+/m);
      expect(unit).toMatch(/^TimeoutStopSec=\S+/m);
    }
    expect(agent).toMatch(/^EnvironmentFile=\S+/m);
    expect(coordinator).toMatch(/^ReadWritePaths=\S+/m);
  });

  it("has environment examples that set only the process's own variables", () => {
    for (const name of envNames(read("deploy/systemd/autonomy-agent.env.example"))) expect(agentEnv, name).toContain(name);
    for (const name of envNames(read("deploy/systemd/autonomy-coordinator.env.example"))) expect(coordinatorEnv, name).toContain(name);
  });

  it("has Kubernetes manifests that run autonomy agent as a sidecar and three autonomy coordinators", () => {
    const sidecar = read("deploy/kubernetes/agent-sidecar.yaml");
    const coordinator = read("deploy/kubernetes/coordinator.yaml");
    expect(sidecar).toMatch(/command: \["autonomy", "agent"\]/);
    expect(coordinator).toMatch(/command: \["autonomy", "coordinator"\]/);
    // Readiness must not be write-ready: only the leader is, and followers would never be ready.
    expect(sidecar).toMatch(/readinessProbe:\s+httpGet:\s+path: \/readyz/);
    expect(sidecar).toMatch(/livenessProbe:\s+httpGet:\s+path: \/healthz/);
    expect(sidecar).toMatch(/fieldPath: metadata\.name/);
    expect(sidecar).toMatch(/terminationGracePeriodSeconds: \d+/);
    expect(coordinator).toMatch(/kind: StatefulSet/);
    expect(coordinator).toMatch(/replicas: 3\b/);
    expect(coordinator).toMatch(/volumeClaimTemplates:/);
    // Each coordinator advertises its own pod address, and the agents list all three.
    expect(coordinator).toMatch(/AUTONOMY_ADVERTISE_URL\s+value: https:\/\/\$\(POD_NAME\)\.autonomy-coordinator:8890/);
    expect(sidecar).toMatch(/autonomy-coordinator-0\.autonomy-coordinator:8890,https:\/\/autonomy-coordinator-1\.autonomy-coordinator:8890,https:\/\/autonomy-coordinator-2/);
    const cli = new Set(["AUTONOMY_ORCHESTRATOR_URL", "AUTONOMY_OPERATOR", "AUTONOMY_AUDIT_DIR", "AUTONOMY_TOKEN", "AUTONOMY_TLS_CERT", "AUTONOMY_TLS_KEY", "AUTONOMY_TLS_CA"]);
    for (const name of envNames(sidecar)) expect(agentEnv.has(name) || cli.has(name), `${name} in agent-sidecar.yaml`).toBe(true);
    for (const name of envNames(coordinator)) expect(coordinatorEnv.has(name) || cli.has(name), `${name} in coordinator.yaml`).toBe(true);
  });
});

/** A top-level `autonomy` command. */
export interface Command {
  readonly name: string;
  readonly summary: string;
  run(argv: string[]): Promise<number>;
}

/** What a command's module exports: its name and how it runs. */
export type CommandModule = Pick<Command, "name" | "run">;

/**
 * A command whose module is imported only when it runs: `autonomy --help`
 * (and an unknown command) load none of them, nor gRPC, pg or protobuf.
 */
function lazy(name: string, summary: string, load: () => Promise<CommandModule>): Command {
  return { name, summary, run: async (argv) => (await load()).run(argv) };
}

/** Every command, in the order `autonomy --help` lists them. */
export const commands: readonly Command[] = [
  lazy("dev", "run a real local cluster: Postgres primary + standby, coordinator, agents, demo workload", async () => (await import("./dev/dev-command.js")).devCommand),
  lazy("agent", "run the sidecar agent: election, fencing, probes, node endpoints", async () => (await import("./agent-command.js")).agentCommand),
  lazy("coordinator", "run the coordinator: cluster view, split-brain detection, failover, audit, leader stream", async () => (await import("./coordinator-command.js")).coordinatorCommand),
  lazy("ha", "status, failover, split-brain, pause/resume, history, watch", async () => (await import("./ha-command.js")).haCommand),
  lazy("audit", "query the audit log", async () => (await import("./audit-command.js")).auditCommand),
  lazy("migrate", "apply the schema migrations (agents and the coordinator also do this on start)", async () => (await import("./migrate-command.js")).migrateCommand),
  lazy("db", "database failover steps: stamp the promotion epoch on a promoted server (seed 004 §3)", async () => (await import("./db-command.js")).dbCommand),
];

export function helpText(): string {
  const width = Math.max(...commands.map((c) => c.name.length), 8);
  const lines = commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return [
    "autonomy — leader election, fencing and failover for a PostgreSQL-backed control plane",
    "",
    "Usage: autonomy <command> [flags]",
    "",
    "Commands:",
    ...lines,
    "",
    'Run "autonomy <command> --help" for a command\'s flags.',
    "",
  ].join("\n");
}

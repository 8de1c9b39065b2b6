import { agentCommand } from "./agent-command.js";
import { devCommand } from "./dev/dev-command.js";
import { migrateCommand } from "./migrate-command.js";
import { dbCommand } from "./db-command.js";
import { coordinatorCommand } from "./coordinator-command.js";
import { auditCommand, haCommand } from "./ha-command.js";

/** A top-level `autonomy` command. */
export interface Command {
  readonly name: string;
  readonly summary: string;
  run(argv: string[]): Promise<number>;
}

/** Every command, in the order `autonomy --help` lists them. */
export const commands: Command[] = [];
commands.push(devCommand, agentCommand);
commands.push(coordinatorCommand);
commands.push(haCommand, auditCommand);
commands.push(migrateCommand, dbCommand);

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

import { toHaError } from "../core/errors.js";
import { connectDatabase, parseDatabaseUrl } from "../db/connect.js";
import { SchemaName } from "../db/identifiers.js";
import { migrate } from "../db/migrations.js";
import type { CommandModule } from "./commands.js";
import { ExitCode } from "./exit-codes.js";
import { resolveSettings, settingsHelp, type SettingSpec } from "../core/settings.js";

const specs: readonly SettingSpec[] = [
  { flag: "database-url", env: "AUTONOMY_DATABASE_URL", kind: "string", required: true, help: "the primary to migrate" },
  { flag: "schema", env: "AUTONOMY_SCHEMA", kind: "string", default: "public", help: "schema of leadership_state, leader_epochs and assert_epoch()" },
];

/** `autonomy migrate`: what agents and the coordinator do on start, on its own (e.g. before granting roles). */
export const migrateCommand: CommandModule = {
  name: "migrate",
  async run(argv) {
    const { settings, help } = resolveSettings("migrate", specs, argv);
    if (help) {
      process.stdout.write(settingsHelp("autonomy migrate --database-url URL [--schema NAME]", "Creates or upgrades leadership_state, leader_epochs and the epoch functions. Idempotent; safe to run while agents run.", specs));
      return ExitCode.Ok;
    }
    const schema = new SchemaName(settings.string("schema"));
    const target = parseDatabaseUrl(settings.string("database-url"), "--database-url");
    const client = await connectDatabase(target, { applicationName: "autonomy-migrate", connectTimeoutMs: 5_000 }, () => undefined);
    try {
      const result = await migrate(client, schema).catch((err: unknown) => {
        throw toHaError(err, "migration failed");
      });
      process.stdout.write(
        result.applied.length > 0
          ? `applied migrations ${result.applied.join(", ")} to schema ${schema.name}; now at version ${result.version}\n`
          : `schema ${schema.name} is up to date (version ${result.version})\n`,
      );
      return ExitCode.Ok;
    } finally {
      await client.end().catch(() => undefined);
    }
  },
};

import { agentConfig, agentSettings } from "../agent/config.js";
import { startAgent } from "../agent/agent.js";
import { createLogger } from "../core/log.js";
import { reloadTokensOnHangup, runProcess } from "./process-runner.js";
import { resolveSettings, settingsHelp } from "../core/settings.js";
import type { CommandModule } from "./commands.js";

export const agentCommand: CommandModule = {
  name: "agent",
  async run(argv) {
    const { settings, help } = resolveSettings("agent", agentSettings, argv);
    if (help) {
      process.stdout.write(
        settingsHelp(
          "autonomy agent --node-id ID --database-url URL [flags]",
          "Holds write authority through a PostgreSQL session advisory lock, numbers terms with epochs,\nmeasures replication, serves the node's endpoints and reports to the coordinator.",
          agentSettings,
        ),
      );
      return 0;
    }
    const config = agentConfig(settings);
    const log = createLogger({ name: `agent ${config.nodeId}`, level: settings.string("log-level") });
    reloadTokensOnHangup(config.security?.auth.tokens, log);
    return runProcess(log, () => startAgent(config, log));
  },
};

import { createLogger } from "../core/log.js";
import { coordinatorConfig, coordinatorSettings } from "../coordinator/settings.js";
import { startCoordinator } from "../coordinator/start-coordinator.js";
import type { CommandModule } from "./commands.js";
import { reloadTokensOnHangup, runProcess } from "./process-runner.js";
import { resolveSettings, settingsHelp } from "../core/settings.js";

export const coordinatorCommand: CommandModule = {
  name: "coordinator",
  async run(argv) {
    const { settings, help } = resolveSettings("coordinator", coordinatorSettings, argv);
    if (help) {
      process.stdout.write(
        settingsHelp(
          "autonomy coordinator --database-url URL [flags]",
          "Sees every agent at once: detects split-brain continuously, runs planned and automatic failover\nand split-brain recovery, writes the audit log and serves the leader stream.",
          coordinatorSettings,
        ),
      );
      return 0;
    }
    const log = createLogger({ name: "coordinator", level: settings.string("log-level") });
    return runProcess(log, async () => {
      const config = coordinatorConfig(settings);
      reloadTokensOnHangup(config.security?.auth.tokens, log);
      const running = await startCoordinator({ ...config, log });
      log.info({ url: running.url, clusters: running.clusters }, `coordinator listening on ${running.url} (${running.clusters.length === 1 ? `cluster ${running.clusters[0]}` : `clusters ${running.clusters.join(", ")}`})`);
      return running;
    });
  },
};

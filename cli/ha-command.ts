import type { CommandModule } from "./commands.js";
import { haClusters } from "./ha-clusters.js";
import { haFailover } from "./ha-failover.js";
import { group } from "./ha-group.js";
import { haHistory } from "./ha-history.js";
import { haPause, haResume } from "./ha-maintenance.js";
import { haSplitBrain } from "./ha-split-brain.js";
import { haStatus } from "./ha-status.js";
import { haWatch } from "./ha-watch.js";

/* `autonomy ha …`: the operator commands of runbooks 000 and 002, and a few beyond them. */

const ha = group(
  "ha",
  "status, failover, split-brain, pause/resume, history, watch, clusters",
  "Operate the HA control plane: status, planned failover, split-brain detection and recovery, maintenance mode, epoch history, leader stream.",
  [haStatus, haFailover, haSplitBrain, haPause, haResume, haHistory, haWatch, haClusters],
);

export const haCommand: CommandModule = { name: "ha", run: (argv) => ha.run(argv) };

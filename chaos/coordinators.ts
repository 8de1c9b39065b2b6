// The coordinator tier of the cluster under test, as it is deployed: several
// coordinators on one lock database, one active (it holds the coordinator
// lock), the others standbys. This is the one module that knows how many
// there are and which one acts.

import http from "node:http";
import path from "node:path";
import { ProcessGroup } from "./process-group.js";
import { COORDINATOR_FAILURE_TIMEOUT_MS } from "./timings.js";

export interface CoordinatorSetup {
  readonly bin: string;
  /** One port per coordinator. */
  readonly ports: readonly number[];
  readonly databaseUrl: string;
  /** Shared: only the active coordinator writes, so the one file holds the whole audit. */
  readonly auditDir: string;
  readonly tokenFile: string;
  readonly logDir: string;
  readonly expectNodes: readonly string[];
}

export class Coordinators {
  private readonly members: ProcessGroup[];

  constructor(private readonly setup: CoordinatorSetup) {
    this.members = setup.ports.map(
      (port, i) =>
        new ProcessGroup({
          name: `coordinator-${i + 1}`,
          command: process.execPath,
          args: [
            setup.bin,
            "coordinator",
            "--coordinator-id", `coordinator-${i + 1}`,
            "--database-url", setup.databaseUrl,
            "--listen", `127.0.0.1:${port}`,
            "--audit-dir", setup.auditDir,
            "--token-file", setup.tokenFile,
            "--expect-nodes", setup.expectNodes.join(","),
            "--failure-timeout", `${COORDINATOR_FAILURE_TIMEOUT_MS}ms`,
          ],
          logFile: path.join(setup.logDir, `coordinator-${i + 1}.log`),
          env: { ...process.env, AUTONOMY_LOG_LEVEL: "info" },
        }),
    );
  }

  /** Every coordinator's URL, as agents and clients list them. */
  get urls(): string[] {
    return this.setup.ports.map((port) => `http://127.0.0.1:${port}`);
  }

  get ports(): readonly number[] {
    return this.setup.ports;
  }

  get logFiles(): string[] {
    return this.members.map((m) => m.options.logFile);
  }

  startAll(): void {
    for (const m of this.members) m.start();
  }

  /** The coordinator that acts for the cluster now, as its own /readyz says; undefined while none does. */
  async active(): Promise<{ group: ProcessGroup; url: string } | undefined> {
    const roles = await Promise.all(this.members.map((m, i) => (m.running && !m.paused ? roleAt(this.urls[i]!) : Promise.resolve(undefined))));
    const i = roles.indexOf("active");
    return i >= 0 ? { group: this.members[i]!, url: this.urls[i]! } : undefined;
  }

  /** A running coordinator's URL (the active one first), for the hostile clients. */
  async anyUrl(): Promise<string> {
    return (await this.active())?.url ?? this.urls[this.members.findIndex((m) => m.running)] ?? this.urls[0]!;
  }

  /** Whether some coordinator answers as the active one. */
  async healthy(): Promise<boolean> {
    return (await this.active()) !== undefined;
  }

  /** Thaw and start whatever a fault left stopped or killed. */
  restartMissing(): void {
    for (const m of this.members) {
      if (m.paused) m.signal("SIGCONT");
      if (!m.running) m.start();
    }
  }

  async stopAll(): Promise<void> {
    await Promise.allSettled(this.members.map((m) => m.stop()));
  }
}

function roleAt(url: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = http.get(`${url}/readyz`, { timeout: 1_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => {
        try {
          resolve((JSON.parse(body) as { coordinator?: { role?: string } }).coordinator?.role);
        } catch {
          resolve(undefined);
        }
      });
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(undefined));
  });
}

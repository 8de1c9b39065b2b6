import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "../../core/clock.js";
import { freePort, startPgCluster, type PgCluster } from "../../pgcluster/index.js";
import { spawnAutonomy, waitHealthy, type AutonomyProcess } from "../support/processes.js";
import { startCli } from "./orchestrator-stub.js";

/* `autonomy ha watch` across a coordinator restart: a real PostgreSQL, a real coordinator stopped and started again on its port. */

describe("autonomy ha watch when the coordinator restarts", () => {
  let db: PgCluster;
  let dir: string;
  let port: number;
  let url: string;
  let coordinator: AutonomyProcess | undefined;

  const startCoordinator = async () => {
    coordinator = spawnAutonomy("coordinator", ["coordinator", "--database-url", db.primary.url(), "--listen", `127.0.0.1:${port}`, "--audit-dir", join(dir, "audit")], {
      AUTONOMY_LOG_LEVEL: "warn",
    });
    await waitHealthy(coordinator, url);
  };

  beforeAll(async () => {
    db = await startPgCluster({ standbys: 0 });
    dir = mkdtempSync(join(tmpdir(), "autonomy-watch-"));
    port = await freePort();
    url = `http://127.0.0.1:${port}`;
    await startCoordinator();
  }, 120_000);

  afterAll(async () => {
    await coordinator?.stop();
    await db?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("says it lost the stream, reconnects with backoff, says when it resumed, prints the new snapshot, and still exits 0 on Ctrl-C", async () => {
    const watch = startCli(["ha", "watch", "--orchestrator-url", url]);
    let out = "";
    let err = "";
    watch.stdout!.on("data", (b: Buffer) => (out += b.toString()));
    watch.stderr!.on("data", (b: Buffer) => (err += b.toString()));
    const snapshots = () => out.split("\n").filter((l) => / snapshot /.test(l)).length;
    try {
      await waitFor(() => snapshots() === 1, { timeoutMs: 20_000, what: "the first snapshot" });

      await coordinator!.stop();
      await waitFor(() => err.includes("lost the leader stream"), { timeoutMs: 20_000, what: "the watch to notice the coordinator is gone" });
      expect(watch.exitCode).toBeNull();

      await startCoordinator();
      await waitFor(() => err.includes("resumed the leader stream") && snapshots() === 2, { timeoutMs: 30_000, what: "the watch to resume" });
    } catch (e) {
      throw new Error(`${(e as Error).message}\n--- stdout\n${out}--- stderr\n${err}`);
    }
    const notes = err.trimEnd().split("\n");
    expect(notes[0]).toMatch(new RegExp(`^autonomy ha watch: lost the leader stream from ${url} at \\S+ \\(.+\\); reconnecting$`));
    expect(notes.at(-1)).toMatch(/^autonomy ha watch: resumed the leader stream at \S+ after \d+ attempt\(s\), [\d.]+s without it; changes in between may have been missed/);

    watch.kill("SIGINT");
    const [code] = (await once(watch, "exit")) as [number | null];
    expect(code).toBe(0);
  }, 120_000);
});

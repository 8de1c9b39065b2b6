// Real PostgreSQL servers: one cluster per describe block.

import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPgCluster, type PgCluster, type PgServer } from "./index.js";
import { isProcessGone, waitUntil } from "./processes.js";

const here = path.dirname(fileURLToPath(import.meta.url));

/** pids of processes whose command line mentions `needle` (ps, as the brief's check). */
function processesMentioning(needle: string): string[] {
  const out = execFileSync("ps", ["-eo", "pid,args"], { encoding: "utf8" });
  return out.split("\n").filter((line) => line.includes(needle) && !line.includes("ps -eo"));
}

async function waitForRow(server: PgServer, sql: string, params: unknown[]): Promise<void> {
  await waitUntil(async () => (await server.query(sql, params)).length > 0, {
    timeoutMs: 15_000,
    what: `row on ${server.name}`,
  });
}

describe("pgcluster: primary + streaming standby", () => {
  let cluster: PgCluster;
  let startMs = 0;

  beforeAll(async () => {
    const t0 = Date.now();
    cluster = await startPgCluster();
    startMs = Date.now() - t0;
    console.log(`pgcluster: cluster started in ${startMs}ms`);
    await cluster.primary.query("CREATE TABLE items (id int PRIMARY KEY, note text)");
  });

  afterAll(async () => {
    await cluster?.close();
  });

  it("starts quickly with a streaming standby", async () => {
    expect(startMs).toBeLessThan(15_000);
    expect(cluster.standby).toBe(cluster.standbys[0]);
    expect(cluster.primary.isRunning()).toBe(true);
    expect(cluster.primary.pid()).toBeGreaterThan(0);
    expect(cluster.primary.url()).toBe(`postgres://postgres@127.0.0.1:${cluster.primary.port}/postgres`);
    expect(cluster.primary.url("app", { application_name: "t" })).toBe(
      `postgres://postgres@127.0.0.1:${cluster.primary.port}/app?application_name=t`,
    );
    const [recovery] = await cluster.standby.query<{ r: boolean }>("SELECT pg_is_in_recovery() AS r");
    expect(recovery?.r).toBe(true);
    const senders = await cluster.primary.query<{ application_name: string; state: string }>(
      "SELECT application_name, state FROM pg_stat_replication",
    );
    expect(senders).toEqual([{ application_name: "standby1", state: "streaming" }]);
    const slots = await cluster.primary.query<{ slot_name: string; active: boolean }>(
      "SELECT slot_name, active FROM pg_replication_slots",
    );
    expect(slots).toEqual([{ slot_name: "standby1_slot", active: true }]);
  });

  it("replicates a row written on the primary to the standby", async () => {
    await cluster.primary.query("INSERT INTO items VALUES (1, 'replicated')");
    await waitForRow(cluster.standby, "SELECT 1 FROM items WHERE id = $1", [1]);
  });

  it("keeps committed data across stop/start and restart", async () => {
    await cluster.primary.query("INSERT INTO items VALUES (2, 'before stop')");
    await cluster.primary.stop("fast");
    expect(cluster.primary.isRunning()).toBe(false);
    expect(cluster.primary.pid()).toBeUndefined();
    await expect(cluster.primary.query("SELECT 1")).rejects.toThrow();
    await cluster.primary.start();
    await cluster.primary.restart();
    const rows = await cluster.primary.query("SELECT note FROM items WHERE id = 2");
    expect(rows).toEqual([{ note: "before stop" }]);
    await cluster.standby.waitForStreaming();
  });

  it("keeps committed data after SIGKILL of the postmaster, and start() works right after", async () => {
    await cluster.primary.query("INSERT INTO items VALUES (3, 'before kill')");
    const oldPid = cluster.primary.pid()!;
    await cluster.primary.kill();
    expect(cluster.primary.isRunning()).toBe(false);
    expect(isProcessGone(oldPid)).toBe(true);
    await cluster.primary.start();
    expect(cluster.primary.pid()).not.toBe(oldPid);
    const rows = await cluster.primary.query("SELECT note FROM items WHERE id = 3");
    expect(rows).toEqual([{ note: "before kill" }]);
    // The standby reconnects on its own.
    await cluster.standby.waitForStreaming();
    await cluster.primary.query("INSERT INTO items VALUES (4, 'after kill')");
    await waitForRow(cluster.standby, "SELECT 1 FROM items WHERE id = $1", [4]);
  });

  it("pauseReplay hides new rows on the standby (though WAL is received) until resumeReplay", async () => {
    await cluster.standby.pauseReplay();
    await cluster.primary.query("INSERT INTO items VALUES (5, 'while paused')");
    const [head] = await cluster.primary.query<{ lsn: string }>("SELECT pg_current_wal_lsn()::text AS lsn");
    // The standby received the WAL that holds the row...
    await waitUntil(
      async () => {
        const [r] = await cluster.standby.query<{ ok: boolean }>(
          "SELECT pg_last_wal_receive_lsn() >= $1::pg_lsn AS ok",
          [head!.lsn],
        );
        return r?.ok === true;
      },
      { timeoutMs: 15_000, what: "standby to receive the WAL" },
    );
    // ...but has not applied it.
    expect(await cluster.standby.query("SELECT 1 FROM items WHERE id = 5")).toEqual([]);
    const [state] = await cluster.standby.query<{ s: string }>("SELECT pg_get_wal_replay_pause_state() AS s");
    expect(state?.s).toBe("paused");
    await cluster.standby.resumeReplay();
    await waitForRow(cluster.standby, "SELECT 1 FROM items WHERE id = $1", [5]);
  });

  it("refuses replay control and promotion on the primary", async () => {
    await expect(cluster.primary.pauseReplay()).rejects.toThrow(/primary is not a standby/);
    await expect(cluster.primary.promote()).rejects.toThrow(/not a standby/);
  });

  it("promote makes the standby writable (last: it ends replication)", async () => {
    await expect(cluster.standby.query("INSERT INTO items VALUES (6, 'x')")).rejects.toThrow(/read-only/);
    await cluster.standby.promote();
    await cluster.standby.query("INSERT INTO items VALUES (6, 'written on the promoted standby')");
    const rows = await cluster.standby.query("SELECT count(*)::int AS n FROM items");
    expect(rows).toEqual([{ n: 6 }]);
  });
});

describe("pgcluster: two synchronous standbys and teardown", () => {
  it("starts, replicates synchronously, and close() leaves nothing behind", async () => {
    const lines: string[] = [];
    const cluster = await startPgCluster({ standbys: 2, synchronous: true, log: (l) => lines.push(l) });
    const baseDir = cluster.baseDir;
    try {
      expect(lines.some((l) => l.includes("ready in"))).toBe(true);
      expect(cluster.standbys.map((s) => s.name)).toEqual(["standby1", "standby2"]);
      const rows = await cluster.primary.query<{ application_name: string; sync_state: string }>(
        "SELECT application_name, sync_state FROM pg_stat_replication ORDER BY application_name",
      );
      expect(rows).toEqual([
        { application_name: "standby1", sync_state: "sync" },
        { application_name: "standby2", sync_state: "potential" },
      ]);
      await cluster.primary.query("CREATE TABLE t (id int)");
      await cluster.primary.query("INSERT INTO t VALUES (1)");
      await waitForRow(cluster.standbys[1]!, "SELECT 1 FROM t WHERE id = $1", [1]);
      expect(processesMentioning(baseDir).length).toBe(3);
      // A frozen server must not block close().
      await cluster.standbys[1]!.kill("SIGSTOP");
    } finally {
      await cluster.close();
    }
    expect(processesMentioning(baseDir)).toEqual([]);
    expect(existsSync(baseDir)).toBe(false);
    await cluster.close(); // idempotent
  });

  it("keepData leaves the data directory for inspection", async () => {
    const cluster = await startPgCluster({ standbys: 0, keepData: true });
    await cluster.close();
    try {
      expect(existsSync(path.join(cluster.primary.dataDir, "PG_VERSION"))).toBe(true);
      expect(existsSync(cluster.primary.logFile)).toBe(true);
      expect(processesMentioning(cluster.baseDir)).toEqual([]);
    } finally {
      rmSync(cluster.baseDir, { recursive: true, force: true });
    }
  });

  it("settings apply to the primary and its standbys inherit them", async () => {
    const cluster = await startPgCluster({ standbys: 1, settings: { track_commit_timestamp: true, work_mem: "8MB" } });
    try {
      for (const server of [cluster.primary, cluster.standby]) {
        const rows = await server.query<{ tct: string; wm: string }>("SELECT current_setting('track_commit_timestamp') AS tct, current_setting('work_mem') AS wm");
        expect(rows, server.name).toEqual([{ tct: "on", wm: "8MB" }]);
      }
    } finally {
      await cluster.close();
    }
  });

  it("no postmaster outlives a host process killed with SIGKILL", async () => {
    const { host, facts } = await startHost("idle");
    try {
      expect(isProcessGone(facts.pid)).toBe(false);
      host.kill("SIGKILL");
      await waitUntil(() => isProcessGone(facts.pid) && processesMentioning(facts.baseDir).length === 0, {
        timeoutMs: 15_000,
        what: "the orphaned postmaster to shut down",
      });
    } finally {
      host.kill("SIGKILL");
      // No 'exit' handler runs on SIGKILL, so the directory is ours to remove.
      rmSync(facts.baseDir, { recursive: true, force: true });
    }
  });

  it("a host that exits without close() stops its servers and removes its temp dir", async () => {
    const { host, facts } = await startHost("exit");
    await new Promise((resolve) => (host.exitCode !== null ? resolve(null) : host.once("exit", resolve)));
    try {
      // The exit handler ran synchronously before the process ended.
      expect(isProcessGone(facts.pid)).toBe(true);
      expect(processesMentioning(facts.baseDir)).toEqual([]);
      expect(existsSync(facts.baseDir)).toBe(false);
    } finally {
      rmSync(facts.baseDir, { recursive: true, force: true });
    }
  });
});

/** Run testing/orphan-host.ts and read the cluster facts it prints. */
async function startHost(
  mode: "idle" | "exit",
): Promise<{ host: ChildProcessWithoutNullStreams; facts: { baseDir: string; pid: number } }> {
  const host = spawn(process.execPath, ["--import", "tsx", path.join(here, "testing", "orphan-host.ts"), mode]);
  host.stderr.pipe(process.stderr);
  const facts = await new Promise<{ baseDir: string; pid: number }>((resolve, reject) => {
    let buffered = "";
    host.stdout.on("data", (chunk: Buffer) => {
      buffered += chunk.toString("utf8");
      const newline = buffered.indexOf("\n");
      if (newline >= 0) resolve(JSON.parse(buffered.slice(0, newline)));
    });
    host.once("exit", (code) => reject(new Error(`host exited (${code}) before reporting its cluster`)));
  });
  return { host, facts };
}

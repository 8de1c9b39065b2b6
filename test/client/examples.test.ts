import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, spawnSync } from "node:child_process";
import { waitFor } from "../../core/clock.js";
import { describeRun, runCli } from "../support/cli-run.js";
import { AutonomyProcess } from "../support/processes.js";
import { AGENT_LEASE_MS, ClientTestCluster } from "./cluster.js";

/*
 * The three programs of examples/ run as a user would run them, against a
 * real cluster, through a planned failover: the leader-only worker on every
 * node, the follower service over two URLs, and the Python consumer of
 * WatchLeader (Debian's python3-grpcio).
 */

const ROOT = new URL("../../", import.meta.url).pathname;

/** The first Python that has grpcio (Debian's package goes to /usr/bin/python3, which a pyenv shim may hide). */
function pythonWithGrpc(): string {
  for (const candidate of ["/usr/bin/python3", "python3"]) {
    if (spawnSync(candidate, ["-c", "import grpc"], { stdio: "ignore" }).status === 0) return candidate;
  }
  throw new Error("no python3 with grpcio found: apt-get install python3-grpcio (.ci/run installs it)");
}

function run(name: string, file: string, args: string[], env: Record<string, string>): AutonomyProcess {
  const proc = spawn(file, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  return new AutonomyProcess(name, proc);
}

describe("examples/ against a real cluster", () => {
  let cluster: ClientTestCluster;
  const procs: AutonomyProcess[] = [];
  const workers = new Map<string, AutonomyProcess>();
  let follower: AutonomyProcess;
  let python: AutonomyProcess;

  beforeAll(async () => {
    const py = pythonWithGrpc();
    cluster = await ClientTestCluster.start();
    for (const { nodeId } of cluster.nodes) {
      const w = run(`worker ${nodeId}`, process.execPath, ["--import", "tsx", "examples/leader-worker.ts"], {
        AUTONOMY_AGENT_URL: cluster.agentUrl(nodeId),
        DATABASE_URL: cluster.primaryUrl,
        AUTONOMY_LEASE_MS: String(AGENT_LEASE_MS),
      });
      workers.set(nodeId, w);
      procs.push(w);
    }
    follower = run("follower", process.execPath, ["--import", "tsx", "examples/leader-follower.ts"], {
      AUTONOMY_LEADER_URLS: `${cluster.coordinatorUrl},${cluster.agentUrl("cp-node-1")}`,
    });
    python = run("python", py, ["examples/watch_leader.py", `127.0.0.1:${cluster.coordinatorPort}`], {});
    procs.push(follower, python);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await cluster?.close();
  }, 60_000);

  const evidence = () => procs.map((p) => `--- ${p.name} ---\n${p.tail(15)}`).join("\n");

  /** Every example shows `holder` at `epoch`; the worker on `holder` does jobs. */
  async function allSee(holder: string, epoch: number): Promise<void> {
    await waitFor(
      () => {
        const worker = workers.get(holder)!.output;
        return (
          worker.includes(`example worker started (${holder} leads at epoch ${epoch})`) &&
          worker.includes(`job done at epoch ${epoch}`) &&
          follower.output.some((l) => l.includes(`"holder_id":"${holder}","epoch":${epoch},"write_ready":true`)) &&
          python.output.some((l) => l.includes(`holder=${holder} epoch=${epoch} write_ready=true`))
        );
      },
      { timeoutMs: 30_000, what: `every example to show ${holder} at epoch ${epoch}` },
    ).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}\n${evidence()}`);
    });
  }

  it("each shows the leader; only the leader's worker works, and a planned failover moves the work", async () => {
    const first = await cluster.leader();
    await allSee(first.holder_id, first.current_epoch);
    const r = await runCli(["ha", "failover", "trigger", "--orchestrator-url", cluster.coordinatorUrl, "--operator", "examples-test", "--reason", "examples: planned failover"]);
    expect(r.code, describeRun(r)).toBe(0);
    const second = await cluster.leader(first.current_epoch);
    await allSee(second.holder_id, second.current_epoch);
    expect(workers.get(first.holder_id)!.output.join("\n")).toMatch(new RegExp(`example worker stopped \\(${first.holder_id}, epoch ${first.current_epoch}\\): `));
    // Every job was written by the node that held the epoch it carried.
    const wrong = await cluster.sql(
      "SELECT j.node, j.epoch, e.holder_id FROM example_jobs j JOIN leader_epochs e ON e.epoch = j.epoch AND e.cluster_id = 'default' WHERE e.holder_id <> j.node",
    );
    expect(wrong.rows).toEqual([]);
    expect(Number((await cluster.sql<{ n: string }>("SELECT count(*) AS n FROM example_jobs")).rows[0]!.n)).toBeGreaterThan(0);
  });

  it("the TypeScript examples stop cleanly on SIGTERM", async () => {
    for (const p of [...workers.values(), follower]) {
      p.signal("SIGTERM");
      expect(await p.waitExit(), `${p.name}:\n${p.tail()}`).toBe(0);
    }
  });
});

import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { freePort } from "../../pgcluster/index.js";
import { activePki } from "../../test/support/pki.js";
import { AutonomyProcess, spawnAutonomy, spawnedBin, waitHealthy } from "../../test/support/processes.js";

/** Linux reports process CPU time in clock ticks; 100 per second on every common kernel. */
const CLOCK_TICKS_PER_SECOND = 100;

/**
 * A real `autonomy coordinator` child process on a free loopback port, with
 * its own audit dir and the default policy unless `args` says otherwise. The
 * coordinator runs in its own process (as in production) so that the bench's
 * clients never share its event loop.
 */
export interface CoordinatorStartOptions {
  /** A fixed port, so that a coordinator killed in a takeover bench comes back at the same URL; default a free one. */
  readonly port?: number;
  /** --coordinator-id, for a tier of several; default the coordinator's own (coordinator-HOSTNAME-PORT). */
  readonly coordinatorId?: string;
}

export class CoordinatorProcess {
  private constructor(
    readonly url: string,
    readonly auditDir: string,
    readonly process: AutonomyProcess,
  ) {}

  static async start(databaseUrl: string, args: string[] = [], o: CoordinatorStartOptions = {}): Promise<CoordinatorProcess> {
    const port = o.port ?? (await freePort());
    const auditDir = await mkdtemp(path.join(os.tmpdir(), "autonomy-bench-audit-"));
    const tls = (await activePki()?.serverArgs("coordinator", "coordinator")) ?? [];
    const id = o.coordinatorId ? ["--coordinator-id", o.coordinatorId] : [];
    const argv = ["coordinator", "--database-url", databaseUrl, "--listen", `127.0.0.1:${port}`, "--audit-dir", auditDir, "--log-level", "info", ...id, ...tls, ...args];
    const name = o.coordinatorId ?? "coordinator";
    const proc = process.env.BENCH_CPU_PROF_DIR ? profiled(name, argv, process.env.BENCH_CPU_PROF_DIR) : spawnAutonomy(name, argv);
    const url = `${tls.length ? "https" : "http"}://127.0.0.1:${port}`;
    try {
      await waitHealthy(proc, url);
    } catch (err) {
      await proc.stop();
      await rm(auditDir, { recursive: true, force: true });
      throw err;
    }
    return new CoordinatorProcess(url, auditDir, proc);
  }

  /** CPU seconds (user + system) the coordinator process has used so far. */
  cpuSeconds(): number {
    return processCpuSeconds(this.process.pid);
  }

  /** Resident memory of the coordinator process right now, in bytes. */
  rssBytes(): number {
    return processRssBytes(this.process.pid);
  }

  async stop(): Promise<void> {
    await this.process.stop();
    await rm(this.auditDir, { recursive: true, force: true });
  }
}

/**
 * BENCH_CPU_PROF_DIR=dir makes every coordinator write a V8 CPU profile there
 * when it exits (open it in Chrome DevTools): where a benchmark's time goes.
 * Node refuses --cpu-prof in NODE_OPTIONS, hence our own spawn.
 */
function profiled(name: string, argv: string[], dir: string): AutonomyProcess {
  const flags = ["--cpu-prof", `--cpu-prof-dir=${path.resolve(dir)}`];
  const child = spawn(process.execPath, [...flags, spawnedBin(), ...argv], { stdio: ["ignore", "pipe", "pipe"] });
  return new AutonomyProcess(name, child);
}

/** utime + stime of a process, from /proc/<pid>/stat (fields 14 and 15). */
export function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The command name (field 2) may contain spaces; fields are counted after its ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

/** VmRSS of a process, from /proc/<pid>/status (reported in kB). */
export function processRssBytes(pid: number): number {
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!match) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

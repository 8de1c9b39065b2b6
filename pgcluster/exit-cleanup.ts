// Last-chance cleanup when the host process exits without calling close().
//
// Only an 'exit' listener is installed: the host program keeps full control
// of SIGINT/SIGTERM semantics. If the process dies by a signal instead (no
// 'exit' event), the kernel's parent-death signal armed on each postmaster
// (see pg-user.ts) still shuts the servers down; only the directories are
// left behind in that case.

import { rmSync } from "node:fs";
import { descendantPids, isProcessGone, signalQuietly, sleepSync } from "./processes.js";

/** Never throw from an exit handler (e.g. EPERM on a reused pid). */
function signalSafely(pid: number, signal: NodeJS.Signals): void {
  try {
    signalQuietly(pid, signal);
  } catch {
    // ignore
  }
}

const postmasters = new Set<number>();
const dirs = new Set<string>();
let installed = false;

/** How long the exit handler lets immediate shutdown run before SIGKILL. */
const EXIT_SHUTDOWN_MS = 5_000;

function install(): void {
  if (installed) return;
  installed = true;
  process.on("exit", cleanupNow);
}

/** Stop this postmaster (SIGQUIT, immediate shutdown) if the process exits. */
export function trackPostmaster(pid: number): () => void {
  install();
  postmasters.add(pid);
  return () => postmasters.delete(pid);
}

/** Remove this directory (recursively) if the process exits. */
export function trackDirForRemoval(dir: string): () => void {
  install();
  dirs.add(dir);
  return () => dirs.delete(dir);
}

/** Synchronous: runs inside 'exit', where no further event-loop work happens. */
function cleanupNow(): void {
  const watched: number[] = [];
  for (const pid of postmasters) {
    const tree = [pid, ...descendantPids(pid)];
    watched.push(...tree);
    signalSafely(pid, "SIGQUIT");
    // A server frozen with kill("SIGSTOP") must be thawed to act on SIGQUIT.
    for (const p of tree) signalSafely(p, "SIGCONT");
  }
  const deadline = Date.now() + EXIT_SHUTDOWN_MS;
  while (watched.some((p) => !isProcessGone(p)) && Date.now() < deadline) sleepSync(20);
  for (const p of watched) if (!isProcessGone(p)) signalSafely(p, "SIGKILL");
  postmasters.clear();

  for (const dir of dirs) {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // best effort: never throw from an exit handler
    }
  }
  dirs.clear();
}

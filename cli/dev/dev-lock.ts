import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { failedPrecondition } from "../../core/errors.js";

/**
 * One `autonomy dev` per data dir: a pid file taken with O_EXCL. A file left
 * by a process that no longer runs is taken over; a live one is refused with
 * a message that says how to find and stop it.
 */
export function takeDevLock(path: string, describePath: string): () => void {
  mkdirSync(dirname(path), { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(path, `${process.pid}\n`, { flag: "wx" });
      return () => {
        try {
          if (readFileSync(path, "utf8").trim() === String(process.pid)) rmSync(path, { force: true });
        } catch {
          // already gone
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const pid = Number(readFileSync(path, "utf8").trim());
      if (Number.isInteger(pid) && pid > 0 && alive(pid)) {
        throw failedPrecondition(
          `autonomy dev is already running (pid ${pid}; see ${describePath}). Stop it with Ctrl-C in its terminal or "kill ${pid}", or use another --data-dir`,
        );
      }
      rmSync(path, { force: true });
    }
  }
  throw failedPrecondition(`could not take ${path}; another autonomy dev is starting`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

// Preloaded into agents by the chaos harness (node --import): on SIGUSR2 it
// blocks the event loop for the number of milliseconds written in the file
// named by AUTONOMY_CHAOS_BLOCK_FILE, like a leader stuck in a long
// synchronous computation or a GC pause. No timer, socket or heartbeat runs
// meanwhile; the process stays alive and answers nothing.
import { readFileSync } from "node:fs";

const file = process.env.AUTONOMY_CHAOS_BLOCK_FILE;
if (file) {
  process.on("SIGUSR2", () => {
    let ms = 0;
    try {
      ms = Number(readFileSync(file, "utf8").trim()) || 0;
    } catch {
      return;
    }
    const until = Date.now() + ms;
    while (Date.now() < until) {
      // busy: the point is that nothing else runs
    }
  });
}

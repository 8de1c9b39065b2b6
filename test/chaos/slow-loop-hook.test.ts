import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";

const HOOK = new URL("../../chaos/slow-loop-hook.mjs", import.meta.url).pathname;

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("the slow-leader hook", () => {
  it("blocks the event loop of the process it is preloaded into, on SIGUSR2, for the time in its file", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "chaos-hook-"));
    const blockFile = path.join(dir, "block-ms");
    writeFileSync(blockFile, "800");
    // A process that prints a timestamp every 20 ms: a blocked loop shows as a gap.
    const child = spawn(process.execPath, ["--import", HOOK, "-e", "setInterval(() => console.log(Date.now()), 20)"], {
      env: { ...process.env, AUTONOMY_CHAOS_BLOCK_FILE: blockFile },
      stdio: ["ignore", "pipe", "inherit"],
    });
    const ticks: number[] = [];
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => ticks.push(...chunk.split("\n").filter(Boolean).map(Number)));
    try {
      await until(() => ticks.length >= 5, 10_000, "the child to tick");
      const before = ticks.length;
      child.kill("SIGUSR2");
      await until(() => ticks.length >= before + 10, 10_000, "ticks after the block");
      const gaps = ticks.slice(before - 1).map((t, i, all) => (i === 0 ? 0 : t - all[i - 1]!));
      expect(Math.max(...gaps)).toBeGreaterThanOrEqual(750);
      expect(child.exitCode).toBeNull(); // blocked, not killed
    } finally {
      child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { waitFor } from "../../../core/clock.js";
import { processCommandLine, signalQuietly } from "../../../pgcluster/processes.js";

/*
 * Debian's chromium, headless, driven over the DevTools protocol on a pipe
 * (--remote-debugging-pipe: we write JSON commands to its fd 3 and read
 * replies from its fd 4, each message ending in a NUL byte). The page stays
 * open, so a test can watch it change without reloading it.
 */

type Reply = { id?: number; result?: Record<string, unknown>; error?: { message: string }; method?: string; sessionId?: string };

export class Browser {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (r: Record<string, unknown>) => void; reject: (e: Error) => void }>();
  private buffer = "";
  private stderr = "";

  private constructor(
    private readonly proc: ChildProcess,
    private readonly dir: string,
  ) {
    const out = proc.stdio[4] as Readable;
    out.setEncoding("utf8");
    out.on("data", (chunk: string) => {
      this.buffer += chunk;
      let end: number;
      while ((end = this.buffer.indexOf("\0")) >= 0) {
        const message = JSON.parse(this.buffer.slice(0, end)) as Reply;
        this.buffer = this.buffer.slice(end + 1);
        const w = message.id === undefined ? undefined : this.waiting.get(message.id);
        if (!w) continue;
        this.waiting.delete(message.id!);
        if (message.error) w.reject(new Error(message.error.message));
        else w.resolve(message.result ?? {});
      }
    });
    proc.stderr!.setEncoding("utf8");
    proc.stderr!.on("data", (c: string) => (this.stderr = (this.stderr + c).slice(-4000)));
    proc.once("exit", () => {
      for (const w of this.waiting.values()) w.reject(new Error(`chromium exited: ${this.stderr}`));
      this.waiting.clear();
    });
  }

  static launch(): Browser {
    const dir = mkdtempSync(join(tmpdir(), "autonomy-chromium-"));
    const proc = spawn(
      "chromium",
      ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--hide-scrollbars", "--remote-debugging-pipe", `--user-data-dir=${dir}`, "about:blank"],
      { stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"] },
    );
    return new Browser(proc, dir);
  }

  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      (this.proc.stdio[3] as Writable).write(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }) + "\0");
    });
  }

  /** A new tab at a fixed size, in light or dark mode. */
  async open(url: string, size = { width: 1280, height: 900 }): Promise<Page> {
    const { targetId } = (await this.send("Target.createTarget", { url: "about:blank" })) as { targetId: string };
    const { sessionId } = (await this.send("Target.attachToTarget", { targetId, flatten: true })) as { sessionId: string };
    const page = new Page(this, sessionId);
    await page.send("Page.enable");
    await page.send("Emulation.setDeviceMetricsOverride", { ...size, deviceScaleFactor: 1, mobile: false });
    await page.scheme("light");
    await page.send("Page.navigate", { url });
    return page;
  }

  async close(): Promise<void> {
    if (this.proc.exitCode === null) {
      const exited = new Promise((resolve) => this.proc.once("exit", resolve));
      this.proc.kill("SIGTERM");
      await exited;
    }
    // Chromium's helper processes may outlive the main one for a moment, still
    // writing the profile: wait for every process started on it to be gone
    // (SIGKILL after a deadline), then remove it.
    const deadline = performance.now() + 5_000;
    for (let left = processesUsing(this.dir); left.length > 0; left = processesUsing(this.dir)) {
      if (performance.now() > deadline + 5_000) break;
      if (performance.now() > deadline) for (const pid of left) signalQuietly(pid, "SIGKILL");
      await new Promise((r) => setTimeout(r, 50));
    }
    rmSync(this.dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  }
}

/** Pids of the processes whose command line names `dir` (Chromium's helpers carry --user-data-dir). */
function processesUsing(dir: string): number[] {
  return readdirSync("/proc")
    .filter((e) => /^\d+$/.test(e))
    .map(Number)
    .filter((pid) => processCommandLine(pid)?.includes(dir));
}

export class Page {
  constructor(
    private readonly browser: Browser,
    private readonly sessionId: string,
  ) {}

  send(method: string, params: Record<string, unknown> = {}) {
    return this.browser.send(method, params, this.sessionId);
  }

  async scheme(value: "light" | "dark"): Promise<void> {
    await this.send("Emulation.setEmulatedMedia", { features: [{ name: "prefers-color-scheme", value }] });
  }

  /** A JavaScript expression's value in the page. */
  async eval<T>(expression: string): Promise<T> {
    const r = (await this.send("Runtime.evaluate", { expression, returnByValue: true, awaitPromise: true })) as { result: { value: T }; exceptionDetails?: { text: string } };
    if (r.exceptionDetails) throw new Error(`${expression}: ${r.exceptionDetails.text}`);
    return r.result.value;
  }

  text(selector: string): Promise<string> {
    return this.eval<string>(`(document.querySelector(${JSON.stringify(selector)})?.textContent ?? "").trim()`);
  }

  /** Waits until `check` returns a value (it reads the page), or fails saying what the page showed. */
  async until<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
    return waitFor(async () => (await check()) || undefined, { timeoutMs, intervalMs: 100, what }).catch(async (err: unknown) => {
      const shown = await this.eval<string>("document.body.innerText").catch(() => "(page unreadable)");
      throw new Error(`${(err as Error).message}\n--- the page showed ---\n${shown.slice(0, 3000)}`);
    }) as Promise<T>;
  }

  /** A PNG of the whole page at the size it was opened with. */
  async screenshot(): Promise<Buffer> {
    const { data } = (await this.send("Page.captureScreenshot", { format: "png" })) as { data: string };
    return Buffer.from(data, "base64");
  }
}

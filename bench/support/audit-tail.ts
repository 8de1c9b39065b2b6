import { Arrivals } from "./arrivals.js";
import { watch, type FSWatcher } from "node:fs";
import { open } from "node:fs/promises";
import path from "node:path";
import { AUDIT_FILE } from "../../coordinator/audit/index.js";

export interface AuditArrival {
  /** performance.now() when the line was seen in the file. */
  readonly at: number;
  readonly type: string;
}

/**
 * Follows the coordinator's audit.jsonl with inotify (fs.watch) and
 * timestamps each line as it appears. A line is visible once written; the
 * coordinator's fsync of it may still be in flight.
 */
export class AuditTail {
  readonly lines = new Arrivals<AuditArrival>();
  private offset = 0;
  private partial = "";
  private reading: Promise<void> = Promise.resolve();
  private readonly watcher: FSWatcher;

  constructor(readonly dir: string) {
    this.watcher = watch(dir, () => {
      this.reading = this.reading.then(() => this.read());
    });
  }

  /** Reads what is in the file now; those lines predate any later `since`. */
  async catchUp(): Promise<void> {
    await (this.reading = this.reading.then(() => this.read()));
  }

  next(type: string, since: number, timeoutMs: number): Promise<AuditArrival> {
    return this.lines.next((l) => l.type === type, since, timeoutMs, () => `${type} audit line`);
  }

  close(): void {
    this.watcher.close();
  }

  private async read(): Promise<void> {
    const file = await open(path.join(this.dir, AUDIT_FILE), "r").catch(() => undefined);
    if (!file) return;
    try {
      for (;;) {
        const buf = Buffer.alloc(64 * 1024);
        const { bytesRead } = await file.read(buf, 0, buf.length, this.offset);
        if (bytesRead === 0) break;
        this.offset += bytesRead;
        const at = performance.now();
        const text = this.partial + buf.subarray(0, bytesRead).toString("utf8");
        const lines = text.split("\n");
        this.partial = lines.pop() ?? "";
        for (const line of lines) if (line) this.lines.add({ at, type: (JSON.parse(line) as { type: string }).type });
      }
    } finally {
      await file.close();
    }
  }
}

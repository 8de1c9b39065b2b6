import { randomUUID } from "node:crypto";
import { mkdir, open, type FileHandle } from "node:fs/promises";
import path from "node:path";
import type { Clock } from "../../core/clock.js";
import { AUDIT_FILE, type AuditEvent, type AuditQuery } from "./audit-event.js";
import { readAuditEvents } from "./audit-reader.js";

export type AuditInput = Partial<Omit<AuditEvent, "id" | "time" | "type">> & { readonly type: string };

/**
 * Appends audit events as JSON lines, in order, each flushed to disk before
 * its promise resolves: an audited action must survive a crash right after it.
 * One writer per process; O_APPEND keeps lines whole if another process
 * appends to the same file.
 */
export class AuditLog {
  private handle: Promise<FileHandle> | undefined;
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(
    readonly dir: string,
    private readonly clusterId: string,
    private readonly clock: Clock,
  ) {}

  /** Writes one event; resolves once it is on disk. */
  append(input: AuditInput): Promise<AuditEvent> {
    const event: AuditEvent = {
      id: randomUUID(),
      time: this.clock.now().toISOString(),
      category: input.category ?? input.type.split(".")[0]!,
      type: input.type,
      operator: input.operator ?? "system",
      reason: input.reason ?? "",
      request_id: input.request_id ?? "",
      caller: input.caller ?? "",
      node_id: input.node_id ?? "",
      epoch: input.epoch ?? 0,
      cluster_id: input.cluster_id ?? this.clusterId,
      message: input.message ?? "",
      evidence: input.evidence ?? {},
    };
    const line = JSON.stringify(event) + "\n";
    const write = this.tail.then(async () => {
      if (this.closed) throw new Error("audit log is closed");
      const h = await this.file();
      await h.write(line);
      await h.datasync();
      return event;
    });
    this.tail = write.catch(() => undefined);
    return write;
  }

  query(query: AuditQuery): Promise<AuditEvent[]> {
    return this.tail.then(() => readAuditEvents(this.dir, query)).then((r) => r.events);
  }

  async close(): Promise<void> {
    await this.tail;
    this.closed = true;
    const h = await this.handle?.catch(() => undefined);
    await h?.close();
  }

  private file(): Promise<FileHandle> {
    this.handle ??= mkdir(this.dir, { recursive: true })
      .then(() => open(path.join(this.dir, AUDIT_FILE), "a"))
      .catch((err: unknown) => {
        this.handle = undefined; // try again with the next event
        throw err;
      });
    return this.handle;
  }
}

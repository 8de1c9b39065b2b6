import { randomUUID } from "node:crypto";
import { mkdir, open, stat, type FileHandle } from "node:fs/promises";
import path from "node:path";
import type { Clock } from "../../core/clock.js";
import { ErrorCode, HaError, describeError } from "../../core/errors.js";
import type { Logger } from "../../core/log.js";
import { AUDIT_FILE, type AuditEvent, type AuditQuery } from "./audit-event.js";
import { readAuditEvents } from "./audit-reader.js";

export type AuditInput = Partial<Omit<AuditEvent, "id" | "time" | "type">> & { readonly type: string };

/** A second home for the events, shared by a tier of coordinators (db/audit-store.ts). */
export interface AuditMirror {
  write(event: AuditEvent): Promise<void>;
  query(query: AuditQuery): Promise<AuditEvent[]>;
}

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
    private readonly mirror?: { readonly store: AuditMirror; readonly log: Logger },
  ) {}

  /**
   * Writes one event; resolves once it is on disk (and in the mirror, when
   * there is one: a mirror write that fails is logged, the file is the record).
   */
  async append(input: AuditInput): Promise<AuditEvent> {
    const event = await this.appendToFile(input);
    await this.mirror?.store.write(event).catch((err: unknown) => this.mirror?.log.warn({ err: describeError(err), type: event.type }, "audit event not copied to the lock database (it is in the audit file)"));
    return event;
  }

  private appendToFile(input: AuditInput): Promise<AuditEvent> {
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
    return this.serialized(async () => {
      if (this.closed) throw new Error("audit log is closed");
      const h = await this.file();
      try {
        await h.write(line);
        await h.datasync();
      } catch (err) {
        throw unusable(`cannot write ${this.path}: ${describeError(err)}`, err);
      }
      return event;
    });
  }

  /**
   * Proves that the next event can be written: the directory exists (or is
   * created), and the file is open for appending and is still the one at
   * the path. Mutating calls await this BEFORE they act, so an action that
   * cannot be audited is refused rather than done unrecorded. Fails with a
   * FailedPrecondition HaError that names the path.
   */
  ready(): Promise<void> {
    return this.serialized(async () => {
      if (this.closed) throw unusable("the audit log is closed");
      await this.file();
    });
  }

  private get path(): string {
    return path.join(this.dir, AUDIT_FILE);
  }

  private serialized<T>(work: () => Promise<T>): Promise<T> {
    const run = this.tail.then(work);
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** From the mirror, which every coordinator of a tier shares; from this coordinator's file when there is none or it cannot be read. */
  query(query: AuditQuery): Promise<AuditEvent[]> {
    const fromFile = () => this.tail.then(() => readAuditEvents(this.dir, query)).then((r) => r.events);
    const mirror = this.mirror;
    if (!mirror) return fromFile();
    return mirror.store.query(query).catch((err: unknown) => {
      mirror.log.warn({ err: describeError(err) }, "audit query answered from this coordinator's file: the lock database cannot be read");
      return fromFile();
    });
  }

  /** Resolves once every event appended before the call is written (or failed to be). */
  written(): Promise<void> {
    return this.tail.then(() => undefined);
  }

  async close(): Promise<void> {
    await this.tail;
    this.closed = true;
    const h = await this.handle?.catch(() => undefined);
    await h?.close();
  }

  /**
   * The open file, reopened when the path no longer names it (the directory
   * was moved, deleted or replaced): writing on to an unlinked file would
   * lose every event without an error.
   */
  private async file(): Promise<FileHandle> {
    const current = await this.handle?.catch(() => undefined);
    if (current) {
      const same = await Promise.all([current.stat(), stat(this.path)]).then(
        ([open, named]) => open.ino === named.ino && open.dev === named.dev,
        () => false,
      );
      if (same) return current;
      await current.close().catch(() => undefined);
    }
    this.handle = this.openFile();
    this.handle.catch(() => (this.handle = undefined)); // try again with the next event
    return this.handle;
  }

  private async openFile(): Promise<FileHandle> {
    const dir = await stat(this.dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return undefined;
      throw unusable(`cannot inspect ${this.dir}: ${describeError(err)}`, err);
    });
    if (dir && !dir.isDirectory()) throw unusable(`${this.dir} is not a directory`);
    if (!dir) await mkdir(this.dir, { recursive: true }).catch((err: unknown) => Promise.reject(unusable(`cannot create ${this.dir}: ${describeError(err)}`, err)));
    try {
      return await open(this.path, "a");
    } catch (err) {
      throw unusable(`cannot open ${this.path} for appending: ${describeError(err)}`, err);
    }
  }
}

function unusable(what: string, cause?: unknown): HaError {
  return new HaError(ErrorCode.FailedPrecondition, `audit log unusable: ${what}; fix --audit-dir`, { cause });
}

/**
 * Records an action that has already happened. The action stands whatever
 * the audit log does, so a failed write is not the caller's failure: it is
 * logged as an error with the whole event (so the record survives in the
 * process log) and returned as a sentence the caller can add to its answer.
 * Returns undefined when the event is on disk.
 */
export async function recordAfterActing(audit: AuditLog, log: Logger, input: AuditInput): Promise<string | undefined> {
  try {
    await audit.append(input);
    return undefined;
  } catch (err) {
    const problem = `not recorded in the audit log: ${describeError(err)}`;
    log.error({ audit_event: input, err: describeError(err) }, `AUDIT WRITE FAILED after the action took effect; ${problem}`);
    return problem;
  }
}

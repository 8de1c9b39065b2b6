import type { LockSession } from "./lock-session.js";

const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 2_000;

/**
 * The lock session slot: at most one session, never reused once it failed,
 * and the backoff between attempts to open a new one while the lock database
 * is unavailable.
 */
export class SessionKeeper {
  private session: LockSession | undefined;
  private retryDelayMs = RECONNECT_MIN_MS;
  private lastError = "";

  constructor(private readonly open: () => Promise<LockSession>) {}

  get current(): LockSession | undefined {
    return this.session;
  }

  get alive(): boolean {
    return this.session?.alive === true;
  }

  /** Why the lock database was last unavailable; empty once a session opened. */
  get databaseError(): string {
    return this.lastError;
  }

  /** Replaces a dead session with a fresh one. */
  async connect(): Promise<LockSession> {
    await this.session?.close();
    this.session = undefined;
    this.session = await this.open();
    this.retryDelayMs = RECONNECT_MIN_MS;
    this.lastError = "";
    return this.session;
  }

  /** Ends the session without waiting for it: Postgres frees the lock with it. */
  drop(): void {
    const session = this.session;
    this.session = undefined;
    void session?.close();
  }

  /** The lock database failed: drops the session and returns how long to wait before the next attempt. */
  failed(message: string): number {
    this.drop();
    this.lastError = message;
    const delay = this.retryDelayMs;
    this.retryDelayMs = Math.min(RECONNECT_MAX_MS, this.retryDelayMs * 2);
    return delay;
  }

  async close(): Promise<void> {
    await this.session?.close();
    this.session = undefined;
  }
}

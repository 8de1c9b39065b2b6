import type { Clock } from "../../core/clock.js";
import { leaseLeftMs, type Term } from "./readiness.js";

/**
 * Fires at a term's lease deadline unless re-armed by a newer confirmation.
 * It runs apart from the election loop because that loop may be stuck in a
 * heartbeat on a wedged connection exactly when the lease runs out.
 */
export class LeaseFence {
  private armed: AbortController | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly leaseMs: number,
    signal: AbortSignal,
    private readonly expired: (term: Term) => void,
  ) {
    signal.addEventListener("abort", () => this.disarm(), { once: true });
    if (signal.aborted) this.disarm();
  }

  arm(term: Term): void {
    this.disarm();
    const armed = new AbortController();
    this.armed = armed;
    const due = Math.max(0, leaseLeftMs(term, this.clock.monotonicMs(), this.leaseMs));
    this.clock.sleep(due, armed.signal).then(
      () => {
        if (this.armed !== armed) return;
        this.armed = undefined;
        this.expired(term);
      },
      () => undefined,
    );
  }

  disarm(): void {
    this.armed?.abort();
    this.armed = undefined;
  }
}

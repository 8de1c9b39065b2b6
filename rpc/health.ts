import { HealthCheckResponse_ServingStatus as ServingStatus, Health } from "../gen/grpc/health/v1/health_pb.js";
import { registration, type ServiceRegistration } from "./service-adapter.js";
import { HaError, ErrorCode } from "../core/errors.js";

export { ServingStatus };

/**
 * grpc.health.v1 served from our generated descriptors, so strict clients
 * (grpcurl, grpc_health_probe) and reflection agree on its messages.
 * "" is the whole server; each service has its own entry.
 */
export class HealthService {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly watchers = new Set<(service: string) => void>();

  constructor(services: readonly string[]) {
    this.statuses.set("", ServingStatus.SERVING);
    for (const s of services) this.statuses.set(s, ServingStatus.SERVING);
  }

  setStatus(service: string, status: ServingStatus): void {
    if (this.statuses.get(service) === status) return;
    this.statuses.set(service, status);
    for (const notify of this.watchers) notify(service);
  }

  /** Marks every service NOT_SERVING, e.g. while shutting down. */
  setAll(status: ServingStatus): void {
    for (const service of [...this.statuses.keys()]) this.setStatus(service, status);
  }

  registration(): ServiceRegistration {
    return registration(Health, {
      check: async (request) => {
        const status = this.statuses.get(request.service);
        if (status === undefined) throw new HaError(ErrorCode.NotFound, `unknown service "${request.service}"`);
        return { status };
      },
      watch: (request, ctx) => this.watch(request.service, ctx.signal),
    });
  }

  private async *watch(service: string, signal: AbortSignal): AsyncIterable<{ status: ServingStatus }> {
    let wake: (() => void) | undefined;
    const notify = (changed: string) => {
      if (changed === service) wake?.();
    };
    this.watchers.add(notify);
    signal.addEventListener("abort", () => wake?.(), { once: true });
    try {
      let last: ServingStatus | undefined;
      while (!signal.aborted) {
        const current = this.statuses.get(service) ?? ServingStatus.SERVICE_UNKNOWN;
        if (current !== last) {
          last = current;
          yield { status: current };
        }
        await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      this.watchers.delete(notify);
    }
  }
}

import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";

/**
 * Prometheus metrics through prom-client. The process and Node.js metrics
 * (`process_*`, `nodejs_*`) live in one registry per process, collected once;
 * each server keeps its own registry for the `autonomy_*` metrics, whose
 * values are read from its current report or snapshot at scrape time, so
 * tests that run several servers in one process do not collide.
 */

export const METRICS_CONTENT_TYPE: string = Registry.PROMETHEUS_CONTENT_TYPE;

let processRegistry: Registry | undefined;

function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/** The text a `/metrics` scrape answers: this process's metrics, then the given registries'. */
export async function metricsText(...registries: readonly Registry[]): Promise<string> {
  const parts = await Promise.all([processMetrics(), ...registries].map((r) => r.metrics()));
  return parts.filter((p) => p !== "").join("\n");
}

/** One series of a metric: its label values and its value. */
export type Sample = readonly [labels: Readonly<Record<string, string>>, value: number];

interface MetricSpec<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly labels?: readonly L[];
  /** The series as they are now; called on every scrape. */
  readonly samples: () => readonly Sample[];
}

// A value Prometheus cannot read (NaN, Infinity from a bad division) is shown as 0.
const finite = (v: number) => (Number.isFinite(v) ? v : 0);

/** A gauge whose series are read on every scrape; series that are gone disappear. */
export function gauge<L extends string>(registry: Registry, spec: MetricSpec<L>): void {
  new Gauge<L>({
    name: spec.name,
    help: spec.help,
    labelNames: spec.labels ?? [],
    registers: [registry],
    collect() {
      this.reset();
      for (const [labels, value] of spec.samples()) this.set(labels as Partial<Record<L, string>>, finite(value));
    },
  });
}

/** A counter kept elsewhere (the engine's counters), exposed at its current total on every scrape. */
export function counter<L extends string>(registry: Registry, spec: MetricSpec<L>): void {
  new Counter<L>({
    name: spec.name,
    help: spec.help,
    labelNames: spec.labels ?? [],
    registers: [registry],
    collect() {
      this.reset();
      for (const [labels, value] of spec.samples()) this.inc(labels as Partial<Record<L, string>>, Math.max(0, finite(value)));
    },
  });
}

export { Registry };

import { agentLoadBench, agentLoadName, type AgentLoadOptions } from "./agent-load.js";
import { summarize, type BenchResult } from "./stats.js";

export interface CoordinatorScaleOptions {
  /** Single-cluster agent counts to try in order, stopping at the first whose p99 misses 50 ms. */
  readonly steps: readonly number[];
  /** The single-cluster count always measured (issue 11: 10,000), even when the search stopped below it. */
  readonly singleCluster: number;
  /** Cluster counts to try in order, each with agentsPerCluster agents, on one coordinator; the last is always measured. */
  readonly clusterSteps: readonly number[];
  readonly agentsPerCluster: number;
  readonly seconds: number;
  readonly intervalMs: number;
  readonly transports: number;
}

/**
 * How many agents one active coordinator holds with report-to-view p99 ≤ 50 ms,
 * in one cluster and spread over many, and what each agent costs in memory.
 * Every step is agent-load.ts's measurement (a probe leader's report → its
 * WRITE_READY_CHANGED event) on a fresh PostgreSQL and coordinator, so one
 * step's backlog cannot spill into the next.
 */
export async function coordinatorScaleBench(o: CoordinatorScaleOptions): Promise<BenchResult[]> {
  const single = await search(
    o.steps.map((agents) => ({ agents, seconds: o.seconds, intervalMs: o.intervalMs, transports: o.transports, label: "scale" })),
    { agents: o.singleCluster, seconds: o.seconds, intervalMs: o.intervalMs, transports: o.transports, label: "scale" },
  );
  const perCluster = (clusters: number): AgentLoadOptions => ({ agents: clusters * o.agentsPerCluster, clusters, seconds: o.seconds, intervalMs: o.intervalMs, transports: o.transports, label: "scale" });
  const many = await search(o.clusterSteps.map(perCluster), perCluster(o.clusterSteps[o.clusterSteps.length - 1]!));

  const searched = {
    largestSingleClusterAtP99Under50ms: single.largest ? `${single.largest.agents} agents` : "none of the steps",
    largestClustersAtP99Under50ms: many.largest ? `${many.largest.clusters} clusters × ${o.agentsPerCluster}` : "none of the steps",
  };
  process.stderr.write(`bench: scale: largest with p99 ≤ 50 ms: one cluster ${searched.largestSingleClusterAtP99Under50ms}; many clusters ${searched.largestClustersAtP99Under50ms}\n`);
  // The searches' answers travel with every row, for the JSON reader.
  return [...single.results, ...many.results].map((r) => ({ ...r, settings: { ...r.settings, search: searched } }));
}

/**
 * Runs the steps in order until one misses its target, then `required` if it
 * was not among those run. A step that fails outright (the coordinator could
 * not even take every stream) is a row that did not meet its target, not the
 * end of the benchmark.
 */
async function search(steps: readonly AgentLoadOptions[], required: AgentLoadOptions): Promise<{ results: BenchResult[]; largest: AgentLoadOptions | undefined }> {
  const results: BenchResult[] = [];
  let largest: AgentLoadOptions | undefined;
  for (const step of steps) {
    const r = await measure(step);
    results.push(r);
    if (!r.pass) break;
    largest = step;
  }
  if (!results.some((r) => r.name === agentLoadName(required))) results.push(await measure(required));
  return { results, largest };
}

async function measure(o: AgentLoadOptions): Promise<BenchResult> {
  process.stderr.write(`bench: ${agentLoadName(o)}…\n`);
  try {
    return await agentLoadBench(o);
  } catch (err) {
    const error = (err as Error).message.split("\n")[0]!;
    process.stderr.write(`bench: ${agentLoadName(o)} failed: ${error}\n`);
    return { name: agentLoadName(o), target: "p99 ≤ 50 ms", unit: "ms", summary: summarize([]), samples: [], settings: { agents: o.agents, clusters: o.clusters ?? 1, error }, pass: false };
  }
}

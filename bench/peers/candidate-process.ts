import { fork, type ChildProcess } from "node:child_process";
import { Arrivals } from "../support/arrivals.js";

/** What a candidate child says (bench/peers/*-candidate.ts): over IPC, as it happens. */
export type CandidateOut =
  | { kind: "campaigning" }
  | { kind: "elected"; term: number }
  | { kind: "resigning" }
  | { kind: "error"; message: string };

export type CandidateIn = { kind: "resign"; rejoinAfterMs: number };

export interface CandidateEvent {
  /** performance.now() in the bench process when the message arrived. */
  readonly at: number;
  readonly node: string;
  readonly message: CandidateOut;
}

/**
 * Election candidates in their own processes (so a crash is a real SIGKILL),
 * each a small script that campaigns and reports over IPC. Every message is
 * timestamped on arrival: a crash is measured from the kill to the arrival of
 * another candidate's "elected", as ours is measured to the arrival of a
 * Write-Ready event on a WatchLeader stream.
 */
export class CandidateSet {
  readonly events = new Arrivals<CandidateEvent>();
  readonly history: CandidateEvent[] = [];
  readonly procs = new Map<string, ChildProcess>();
  private listeners: ((e: CandidateEvent) => void)[] = [];

  constructor(
    private readonly script: URL,
    private readonly env: Record<string, string>,
  ) {}

  onEvent(listener: (e: CandidateEvent) => void): void {
    this.listeners.push(listener);
  }

  /** Starts a candidate and waits until it campaigns. */
  async start(node: string, timeoutMs = 30_000): Promise<void> {
    const since = performance.now();
    const proc = fork(this.script.pathname, [], { execArgv: ["--import", "tsx"], env: { ...process.env, ...this.env, CANDIDATE_NODE: node }, stdio: ["ignore", "inherit", "inherit", "ipc"] });
    proc.on("message", (m) => {
      const e = { at: performance.now(), node, message: m as CandidateOut };
      if (e.message.kind === "error") process.stderr.write(`bench: candidate ${node}: ${e.message.message}\n`);
      this.history.push(e);
      this.events.add(e);
      for (const l of this.listeners) l(e);
    });
    this.procs.set(node, proc);
    await this.events.next((e) => e.node === node && e.message.kind === "campaigning", since, timeoutMs, () => `${node} campaigning`);
  }

  /** The node whose latest message is "elected", if exactly one. */
  leader(): string | undefined {
    const latest = new Map<string, CandidateOut["kind"]>();
    for (const node of this.procs.keys()) latest.set(node, "campaigning");
    for (const e of this.history) if (this.procs.has(e.node) && e.message.kind !== "error") latest.set(e.node, e.message.kind);
    const leaders = [...latest].filter(([, k]) => k === "elected").map(([n]) => n);
    return leaders.length === 1 ? leaders[0] : undefined;
  }

  nextElected(since: number, timeoutMs: number, not?: string): Promise<CandidateEvent> {
    return this.events.next((e) => e.message.kind === "elected" && e.node !== not, since, timeoutMs, () => `a candidate other than ${not ?? "none"} elected`);
  }

  /** SIGKILL, as a crash of the node would be; resolves once the process is gone. */
  async kill(node: string): Promise<void> {
    const proc = this.procs.get(node);
    if (!proc) return;
    this.procs.delete(node);
    const gone = new Promise((r) => proc.once("exit", r));
    proc.kill("SIGKILL");
    await gone;
  }

  resign(node: string, rejoinAfterMs: number): void {
    this.procs.get(node)?.send({ kind: "resign", rejoinAfterMs } satisfies CandidateIn);
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.procs.keys()].map((n) => this.kill(n)));
  }
}

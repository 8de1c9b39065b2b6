// Asks every agent "are you Write-Ready?" every tick, all at once, and keeps
// each answer with when it was asked and answered. An answer that takes
// longer than the timeout is dropped: the node said nothing at that instant
// (a stopped process, a blocked event loop).

import http from "node:http";
import type { ReadySample } from "./history.js";

export const SAMPLE_INTERVAL_MS = 100;
const ANSWER_TIMEOUT_MS = 300;

export class ReadySampler {
  readonly samples: ReadySample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private tick = 0;

  constructor(private readonly nodes: readonly { nodeId: string; url: string }[]) {}

  start(): void {
    this.timer = setInterval(() => this.sampleAll(), SAMPLE_INTERVAL_MS);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** The node the latest complete tick found Write-Ready, if exactly one. */
  currentLeader(): string | undefined {
    for (let t = this.tick; t > this.tick - 20 && t > 0; t--) {
      const ready = this.samples.filter((s) => s.tick === t && s.ready);
      if (ready.length === 1) return ready[0]!.nodeId;
    }
    return undefined;
  }

  private sampleAll(): void {
    const tick = ++this.tick;
    for (const node of this.nodes) {
      const sentAt = Date.now();
      void askReady(node.url).then((answer) => {
        if (answer) this.samples.push({ nodeId: node.nodeId, tick, sentAt, receivedAt: Date.now(), ready: answer.ready, epoch: answer.epoch });
      });
    }
  }
}

function askReady(url: string): Promise<{ ready: boolean; epoch: number } | undefined> {
  return new Promise((resolve) => {
    const req = http.get(`${url}/v1/health/write-ready`, { timeout: ANSWER_TIMEOUT_MS, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => {
        try {
          const json = JSON.parse(body) as { ready?: unknown; epoch?: unknown };
          resolve({ ready: json.ready === true, epoch: Number(json.epoch ?? 0) });
        } catch {
          resolve(undefined);
        }
      });
      res.on("error", () => resolve(undefined));
    });
    req.on("timeout", () => {
      req.destroy();
      resolve(undefined);
    });
    req.on("error", () => resolve(undefined));
  });
}

import { createServer, connect, type Server, type Socket } from "node:net";

/**
 * A TCP proxy the test controls, to cut a network path without closing it:
 * `partition()` stops moving bytes both ways (no FIN, no RST, like a dropped
 * link), `heal()` lets them flow again.
 */
export class TcpProxy {
  private server: Server | undefined;
  private readonly pairs = new Set<[Socket, Socket]>();
  private partitioned = false;
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  async start(): Promise<void> {
    this.server = createServer((client) => {
      const upstream = connect(this.targetPort, this.targetHost);
      const pair: [Socket, Socket] = [client, upstream];
      this.pairs.add(pair);
      const end = () => {
        this.pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.on("error", end).on("close", end);
      upstream.on("error", end).on("close", end);
      client.on("data", (b) => this.forward(client, upstream, b));
      upstream.on("data", (b) => this.forward(upstream, client, b));
      if (this.partitioned) client.pause();
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    const address = this.server.address();
    this.port = typeof address === "object" && address ? address.port : 0;
  }

  private forward(from: Socket, to: Socket, bytes: Buffer): void {
    if (this.partitioned) {
      // Hold the bytes back (and stop reading) until healed, as a dead link would.
      from.pause();
      from.unshift(bytes);
      return;
    }
    to.write(bytes);
  }

  partition(): void {
    this.partitioned = true;
    for (const [a, b] of this.pairs) {
      a.pause();
      b.pause();
    }
  }

  heal(): void {
    this.partitioned = false;
    for (const [a, b] of this.pairs) {
      a.resume();
      b.resume();
    }
  }

  async close(): Promise<void> {
    for (const [a, b] of this.pairs) {
      a.destroy();
      b.destroy();
    }
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

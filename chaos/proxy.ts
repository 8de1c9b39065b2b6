// A TCP proxy on loopback that the harness controls, one per link (an agent
// to one database server, an agent to the coordinator). Each direction can
// be cut or delayed on its own. A cut is a blackhole, not a reset: bytes are
// held (and the sender's reads paused, so its kernel buffers fill as they
// would behind a dropped route), no FIN or RST goes through, and when the cut
// heals what was held is delivered in order, as TCP retransmission would.

import net from "node:net";
import type { Direction } from "./schedule.js";

/** to-server: from the client (agent) to the server; from-server: the replies. */
type Way = "to-server" | "from-server";

interface WayState {
  cut: boolean;
  delayMs: number;
}

type Item = { readonly at: number; readonly chunk: Buffer } | { readonly at: number; readonly end: true };

/** One direction of one proxied connection. */
class Pipe {
  private readonly queue: Item[] = [];
  private timer: NodeJS.Timeout | undefined;
  private ended = false;

  constructor(
    private readonly from: net.Socket,
    private readonly to: net.Socket,
    private readonly state: WayState,
  ) {
    from.on("data", (chunk: Buffer) => this.push({ at: Date.now() + this.state.delayMs, chunk }));
    const onEnd = () => this.push({ at: Date.now() + this.state.delayMs, end: true });
    from.once("end", onEnd);
    from.once("close", onEnd);
    from.on("error", () => undefined);
  }

  private push(item: Item): void {
    if (this.ended) return;
    if ("end" in item) this.ended = true;
    this.queue.push(item);
    this.pump();
  }

  /** Deliver what is due, unless this direction is cut. */
  pump(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.state.cut) {
      if (!this.from.destroyed) this.from.pause();
      return;
    }
    if (!this.from.destroyed && this.from.isPaused()) this.from.resume();
    const now = Date.now();
    while (this.queue.length > 0 && this.queue[0]!.at <= now) {
      const item = this.queue.shift()!;
      if ("end" in item) {
        this.to.end();
        // A peer that never closes its side must not keep the socket forever.
        setTimeout(() => this.to.destroy(), 1_000).unref();
        return;
      }
      if (!this.to.destroyed) this.to.write(item.chunk);
    }
    if (this.queue.length > 0) this.timer = setTimeout(() => this.pump(), Math.max(1, this.queue[0]!.at - now));
  }

  destroy(): void {
    if (this.timer) clearTimeout(this.timer);
    this.queue.length = 0;
  }
}

export class ChaosProxy {
  private readonly server: net.Server;
  private readonly ways: Record<Way, WayState> = { "to-server": { cut: false, delayMs: 0 }, "from-server": { cut: false, delayMs: 0 } };
  private readonly pipes = new Set<Pipe>();
  private readonly sockets = new Set<net.Socket>();
  private listenPort = 0;

  constructor(
    readonly name: string,
    private readonly targetHost: string,
    private targetPort: number,
  ) {
    this.server = net.createServer((client) => this.accept(client));
  }

  async listen(host = "127.0.0.1"): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(0, host, () => resolve());
    });
    this.listenPort = (this.server.address() as net.AddressInfo).port;
    return this.listenPort;
  }

  get port(): number {
    return this.listenPort;
  }

  /** Point new connections at another server (e.g. a restarted coordinator on a new port). */
  retarget(port: number): void {
    this.targetPort = port;
  }

  cut(direction: Direction): void {
    for (const way of waysOf(direction)) this.ways[way].cut = true;
    this.pumpAll();
  }

  delay(direction: Direction, ms: number): void {
    for (const way of waysOf(direction)) this.ways[way].delayMs = ms;
  }

  /** Undo every cut and delay. */
  heal(): void {
    for (const way of Object.values(this.ways)) {
      way.cut = false;
      way.delayMs = 0;
    }
    this.pumpAll();
  }

  get faulty(): boolean {
    return Object.values(this.ways).some((w) => w.cut || w.delayMs > 0);
  }

  async close(): Promise<void> {
    for (const p of this.pipes) p.destroy();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private pumpAll(): void {
    for (const p of this.pipes) p.pump();
  }

  private accept(client: net.Socket): void {
    const upstream = net.connect({ host: this.targetHost, port: this.targetPort });
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const toServer = new Pipe(client, upstream, this.ways["to-server"]);
    const fromServer = new Pipe(upstream, client, this.ways["from-server"]);
    for (const s of [client, upstream]) this.sockets.add(s);
    this.pipes.add(toServer);
    this.pipes.add(fromServer);
    // A connection refused upstream (the server is down) is a close the client sees, as it would without the proxy.
    let gone = 0;
    const onClose = () => {
      if (++gone < 2) return;
      this.pipes.delete(toServer);
      this.pipes.delete(fromServer);
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.once("close", onClose);
    upstream.once("close", onClose);
    // The cut holds what arrives; apply it to the fresh pipes at once.
    toServer.pump();
    fromServer.pump();
  }
}

function waysOf(direction: Direction): Way[] {
  return direction === "both" ? ["to-server", "from-server"] : [direction];
}

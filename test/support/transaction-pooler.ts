import { connect, createServer, type Server, type Socket } from "node:net";

/**
 * A minimal transaction-mode connection pooler speaking the PostgreSQL wire
 * protocol, like PgBouncer with pool_mode=transaction and server_round_robin:
 * each client transaction (up to a ReadyForQuery that says "idle") runs on
 * the next free server connection in turn. Just enough to show what a session
 * advisory lock means behind such a pooler; trust authentication only.
 */
export class TransactionPooler {
  private server: Server | undefined;
  private readonly backends: Backend[] = [];
  private next = 0;
  private readonly waiting: (() => void)[] = [];
  private startupReplies: Buffer[] = [];
  port = 0;

  constructor(
    private readonly target: { host: string; port: number; user: string; database: string },
    private readonly size = 3,
  ) {}

  async start(): Promise<void> {
    for (let i = 0; i < this.size; i++) this.backends.push(await this.openBackend());
    this.server = createServer((client) => void this.serve(client).catch(() => client.destroy()));
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    const address = this.server.address();
    this.port = typeof address === "object" && address ? address.port : 0;
  }

  url(): string {
    return `postgres://${this.target.user}@127.0.0.1:${this.port}/${this.target.database}`;
  }

  async close(): Promise<void> {
    for (const b of this.backends) b.socket.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private async openBackend(): Promise<Backend> {
    const socket = connect(this.target.port, this.target.host);
    const reader = new MessageReader(socket);
    const params = Buffer.concat([
      cstr("user"), cstr(this.target.user), cstr("database"), cstr(this.target.database), Buffer.from([0]),
    ]);
    const startup = Buffer.alloc(8);
    startup.writeInt32BE(8 + params.length, 0);
    startup.writeInt32BE(196608, 4);
    socket.write(Buffer.concat([startup, params]));
    const replies: Buffer[] = [];
    for (;;) {
      const m = await reader.next();
      if (m[0] === 0x45 /* E */) throw new Error(`backend startup failed: ${m.subarray(5).toString()}`);
      if (m[0] === 0x53 /* S: ParameterStatus */) replies.push(m);
      if (m[0] === 0x5a /* Z */) break;
    }
    this.startupReplies = replies;
    return { socket, reader, busy: false };
  }

  private async serve(client: Socket): Promise<void> {
    const reader = new MessageReader(client);
    // Startup (or an SSL request first, which we decline).
    let startup = await reader.startup();
    if (startup.readInt32BE(4) === 80877103) {
      client.write("N");
      startup = await reader.startup();
    }
    const key = Buffer.alloc(13);
    key.write("K", 0);
    key.writeInt32BE(12, 1);
    client.write(Buffer.concat([msg("R", int32(0)), ...this.startupReplies, key, msg("Z", Buffer.from("I"))]));
    for (;;) {
      const first = await reader.next().catch(() => undefined);
      if (!first || first[0] === 0x58 /* X: Terminate */) return void client.end();
      const backend = await this.acquire();
      try {
        backend.socket.write(first);
        // Relay until the server is idle again (the transaction is over); the
        // client's further messages of this transaction go to the same server.
        const pump = (async () => {
          for (;;) {
            const m = await reader.next();
            backend.socket.write(m);
          }
        })();
        for (;;) {
          const m = await backend.reader.next();
          client.write(m);
          if (m[0] === 0x5a && m[5] === 0x49 /* Z 'I' */) break;
        }
        reader.detach(pump);
      } finally {
        this.release(backend);
      }
    }
  }

  private async acquire(): Promise<Backend> {
    for (;;) {
      for (let i = 0; i < this.backends.length; i++) {
        const b = this.backends[(this.next + i) % this.backends.length]!;
        if (!b.busy) {
          this.next = (this.next + i + 1) % this.backends.length;
          b.busy = true;
          return b;
        }
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
  }

  private release(b: Backend): void {
    b.busy = false;
    this.waiting.shift()?.();
  }
}

interface Backend {
  readonly socket: Socket;
  readonly reader: MessageReader;
  busy: boolean;
}

/** Frames a socket into protocol messages (type byte + int32 length). */
class MessageReader {
  private buffer = Buffer.alloc(0);
  private wake: (() => void) | undefined;
  private ended = false;
  private pumpGeneration = 0;

  constructor(socket: Socket) {
    socket.on("data", (b) => {
      this.buffer = Buffer.concat([this.buffer, b]);
      this.wake?.();
    });
    const end = () => {
      this.ended = true;
      this.wake?.();
    };
    socket.on("close", end);
    socket.on("error", end);
  }

  /** Stops a relay loop started on this reader without losing buffered bytes. */
  detach(pump: Promise<unknown>): void {
    this.pumpGeneration++;
    void pump.catch(() => undefined);
    this.wake?.();
  }

  async startup(): Promise<Buffer> {
    return this.take(() => (this.buffer.length >= 4 ? this.buffer.readInt32BE(0) : undefined));
  }

  async next(): Promise<Buffer> {
    return this.take(() => (this.buffer.length >= 5 ? 1 + this.buffer.readInt32BE(1) : undefined));
  }

  private async take(size: () => number | undefined): Promise<Buffer> {
    const generation = this.pumpGeneration;
    for (;;) {
      if (generation !== this.pumpGeneration) throw new Error("detached");
      const n = size();
      if (n !== undefined && this.buffer.length >= n) {
        const m = this.buffer.subarray(0, n);
        this.buffer = this.buffer.subarray(n);
        return m;
      }
      if (this.ended) throw new Error("connection closed");
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }
}

function cstr(s: string): Buffer {
  return Buffer.concat([Buffer.from(s), Buffer.from([0])]);
}

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n, 0);
  return b;
}

function msg(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0);
  head.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
}

import pg from "pg";

/** One row of leader_epochs as a test compares it. */
export interface Term {
  readonly epoch: number;
  readonly holder_id: string;
  readonly open: boolean;
}

/**
 * Connections to several PostgreSQL servers at once (a primary and the
 * standby promoted beside it), each kept open and tolerant of its server
 * being killed, all closed by closeAll().
 */
export class ServerClients {
  private readonly clients: pg.Client[] = [];

  async open(url: string): Promise<pg.Client> {
    const c = new pg.Client({ connectionString: url });
    c.on("error", () => undefined); // the server may be killed under it
    await c.connect();
    this.clients.push(c);
    return c;
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.clients.splice(0).map((c) => c.end().catch(() => undefined)));
  }
}

/** Every term a server records, oldest first. */
export async function termsOn(c: pg.Client): Promise<Term[]> {
  const r = await c.query<{ epoch: string; holder_id: string; open: boolean }>("SELECT epoch, holder_id, resigned_at IS NULL AS open FROM leader_epochs ORDER BY epoch");
  return r.rows.map((row) => ({ epoch: Number(row.epoch), holder_id: row.holder_id, open: row.open }));
}

/** Parses a PostgreSQL LSN ("16/B374D848") into a comparable bigint. */
export function parseLsn(text: string | null | undefined): bigint | undefined {
  if (!text) return undefined;
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text);
  if (!m) return undefined;
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

/**
 * Remembers when the primary's WAL reached each position, so a replica's lag
 * can be measured in time from its replay position alone. pg_stat_replication's
 * replay_lag stops moving while a standby's replay is paused (it is only
 * updated when the standby replays something); this estimate keeps growing.
 */
export class LsnHistory {
  private samples: { atMs: number; lsn: bigint }[] = [];

  constructor(private readonly keepMs = 10 * 60_000) {}

  record(atMs: number, lsn: bigint): void {
    const last = this.samples[this.samples.length - 1];
    if (!last || lsn > last.lsn) this.samples.push({ atMs, lsn });
    const cutoff = atMs - this.keepMs;
    while (this.samples.length > 2 && this.samples[1]!.atMs < cutoff) this.samples.shift();
  }

  /**
   * Seconds since the primary first passed `position`: the oldest WAL the
   * replica has not applied was generated at least that long ago. 0 when the
   * replica has everything we sampled.
   */
  lagSeconds(nowMs: number, position: bigint | undefined): number | undefined {
    if (position === undefined) return undefined;
    const firstAhead = this.samples.find((s) => s.lsn > position);
    if (!firstAhead) return 0;
    return Math.max(0, (nowMs - firstAhead.atMs) / 1000);
  }
}

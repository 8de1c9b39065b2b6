import { describeError } from "../../core/errors.js";
import type { Logger } from "../../core/log.js";
import type { SchemaName } from "../../db/identifiers.js";
import { raiseEpochFloor, readConfirmedEpoch } from "../../db/leadership.js";
import type { Queryable } from "../../db/side-connection.js";
import { confirmedByDatabase, type DatabaseTruth } from "../view/cluster-view.js";

/**
 * The epoch floor: the highest epoch confirmed in the lock database, never a
 * value an agent reported. It is kept in that database (epoch_floor, keyed by
 * the server's system identifier), so it survives a coordinator restart and
 * replicates to standbys: a promoted standby carries it, while a freshly
 * initialised server, with an identity of its own, starts from zero.
 */
export class EpochFloor {
  private systemIdentifier: string | undefined;
  private floor = 0;
  /** What we know epoch_floor holds for this server. */
  private stored = 0;
  /** A value the database refused (out of its bounds): not retried. */
  private refused: number | undefined;
  private writing = false;
  private again = false;

  private constructor(
    private readonly db: Queryable,
    private readonly schema: SchemaName,
    private readonly clusterId: string,
    private readonly log: Logger,
  ) {}

  /** Reads the floor the lock database confirms for the cluster. */
  static async load(db: Queryable, schema: SchemaName, clusterId: string, log: Logger): Promise<EpochFloor> {
    const f = new EpochFloor(db, schema, clusterId, log);
    await f.reload();
    log.info({ epoch_floor: f.floor, system_identifier: f.systemIdentifier }, `epoch floor ${f.floor} read from the lock database`);
    return f;
  }

  get value(): number {
    return this.floor;
  }

  /** Raises the floor from what a database read confirmed, and keeps it there; returns the floor. */
  observe(truth: DatabaseTruth | undefined): number {
    if (!truth?.reachable || !truth.identity) return this.floor;
    if (truth.identity.systemIdentifier !== this.systemIdentifier) {
      // Another server, not a promoted standby (which shares the identifier):
      // the epochs of the one we read before mean nothing to its fence.
      this.log.warn(
        { previous: this.systemIdentifier, now: truth.identity.systemIdentifier },
        "the lock database is another server now: its own epoch floor applies",
      );
      this.reset(truth.identity.systemIdentifier);
      this.reload().catch((err: unknown) => this.log.warn({ err: describeError(err) }, "reading the epoch floor failed"));
    }
    this.floor = Math.max(this.floor, confirmedByDatabase(truth));
    this.persist();
    return this.floor;
  }

  private reset(systemIdentifier: string): void {
    this.systemIdentifier = systemIdentifier;
    this.floor = 0;
    this.stored = 0;
    this.refused = undefined;
  }

  private async reload(): Promise<void> {
    const c = await readConfirmedEpoch(this.db, this.schema, this.clusterId);
    if (c.systemIdentifier !== this.systemIdentifier) this.reset(c.systemIdentifier);
    this.stored = Math.max(this.stored, c.storedFloor);
    this.floor = Math.max(this.floor, c.confirmed);
    this.persist();
  }

  /** Writes a risen floor (GREATEST in SQL, so writes in any order only raise it); one write at a time. */
  private persist(): void {
    if (this.floor <= this.stored || this.floor === this.refused || this.systemIdentifier === undefined) return;
    if (this.writing) {
      this.again = true;
      return;
    }
    this.writing = true;
    const floor = this.floor;
    const id = this.systemIdentifier;
    raiseEpochFloor(this.db, this.schema, this.clusterId, id, floor)
      .then(
        (stored) => {
          if (id !== this.systemIdentifier) return;
          if (stored === undefined) {
            this.refused = floor;
            this.log.warn({ epoch_floor: floor }, `the lock database did not take epoch floor ${floor} (another server, or beyond its bound)`);
            return;
          }
          this.stored = Math.max(this.stored, stored);
          this.floor = Math.max(this.floor, stored);
        },
        // A read-only or unreachable database: the next database read retries.
        (err: unknown) => this.log.debug({ err: describeError(err), epoch_floor: floor }, "writing the epoch floor failed"),
      )
      .finally(() => {
        this.writing = false;
        if (this.again) {
          this.again = false;
          this.persist();
        }
      });
  }
}

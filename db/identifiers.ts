import { invalidArgument } from "../core/errors.js";

/**
 * The advisory lock is the two-int form (classid, objid): classid says "this is
 * autonomy-ha" (ASCII "AHA1"), objid is hashtext(cluster_id), so several
 * clusters can share one database and no application lock collides with ours.
 */
export const LOCK_CLASS_ID = 0x41484131;

/**
 * The coordinators' own lock ("AHAC"), with objid hashtext(schema): one active
 * coordinator per schema, never confused with a cluster's leader lock.
 */
export const COORDINATOR_LOCK_CLASS_ID = 0x41484143;

/** Default cluster id, so single-cluster deployments need not name one. */
export const DEFAULT_CLUSTER_ID = "default";

/** A schema name as given by --schema, validated and quoted for SQL. */
export class SchemaName {
  readonly quoted: string;

  constructor(readonly name: string) {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) {
      throw invalidArgument(
        `schema "${name}" is not a plain lower-case SQL identifier; use letters, digits and underscores, starting with a letter`,
      );
    }
    this.quoted = `"${name}"`;
  }

  /** A table or function name qualified by this schema. */
  q(object: string): string {
    return `${this.quoted}.${object}`;
  }
}

export function validateClusterId(id: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(id)) {
    throw invalidArgument(`cluster id "${id}" must be 1-63 letters, digits, '.', '_' or '-'`);
  }
  return id;
}

export function validateNodeId(id: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(id)) {
    throw invalidArgument(`node id "${id}" must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit`);
  }
  return id;
}

/** A region name as given by --region: where a node or a writer runs (e.g. eu-west-1). */
export function validateRegion(region: string, what = "--region"): string {
  if (region !== "" && !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(region)) {
    throw invalidArgument(`${what} "${region}" must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit`);
  }
  return region;
}

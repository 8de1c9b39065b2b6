// Locates the PostgreSQL server binaries the harness needs.
//
// Debian splits PostgreSQL across directories: /usr/bin holds pg_wrapper
// symlinks for client tools only, and a machine may carry hand-made symlinks
// (e.g. /usr/local/bin/initdb) for a subset of the server tools. Mixing tools
// from different directories (or versions) breaks pg_basebackup/initdb, so we
// always pick ONE directory that holds every binary we need.

import { accessSync, constants, existsSync, readdirSync, realpathSync, statSync } from "node:fs";
import { execFileSync } from "node:child_process";
import path from "node:path";

export interface PgBinaries {
  /** Directory that holds initdb, postgres, pg_ctl and pg_basebackup. */
  readonly bindir: string;
  /** Server version as printed by `postgres --version`, e.g. "15.18". */
  readonly version: string;
}

export interface FindPgBinariesOptions {
  /** Environment to read AUTONOMY_PG_BINDIR and PATH from (default process.env). */
  env?: Record<string, string | undefined>;
  /**
   * Last-resort directories, tried in order. Default: /usr/lib/postgresql/<v>/bin,
   * highest major version first. Tests pass [] or a temp dir.
   */
  searchDirs?: string[];
  /** Whether to ask `pg_config --bindir` (found on env.PATH). Default true. */
  usePgConfig?: boolean;
}

/** Every binary the harness runs; a candidate dir must hold all of them. */
export const REQUIRED_PG_BINARIES = ["initdb", "postgres", "pg_ctl", "pg_basebackup"] as const;

/** pg_promote() and standby.signal need PostgreSQL 12+. */
const MIN_MAJOR_VERSION = 12;

const NOT_FOUND_MESSAGE =
  `PostgreSQL server binaries (${REQUIRED_PG_BINARIES.join(", ")}) not found on PATH, ` +
  "in pg_config --bindir, or under /usr/lib/postgresql/*/bin. Install them " +
  "(Debian/Ubuntu: apt-get install postgresql) or set AUTONOMY_PG_BINDIR to the " +
  "directory that holds them.";

/**
 * Find a directory holding all PostgreSQL server binaries. Search order:
 * $AUTONOMY_PG_BINDIR (must be complete: an explicit setting that is wrong is
 * an error, not silently ignored), PATH (each hit resolved through symlinks),
 * `pg_config --bindir`, then /usr/lib/postgresql/<version>/bin.
 */
export function findPgBinaries(options: FindPgBinariesOptions = {}): PgBinaries {
  const env = options.env ?? process.env;

  const explicit = env.AUTONOMY_PG_BINDIR;
  if (explicit !== undefined && explicit !== "") {
    const missing = missingBinaries(explicit);
    if (missing.length > 0) {
      throw new Error(
        `AUTONOMY_PG_BINDIR=${explicit} does not hold the PostgreSQL server binaries ` +
          `(missing: ${missing.join(", ")}). Point it at the directory that holds ` +
          `${REQUIRED_PG_BINARIES.join(", ")} (Debian/Ubuntu: /usr/lib/postgresql/<version>/bin ` +
          "after apt-get install postgresql), or unset it to search PATH.",
      );
    }
    return withVersion(path.resolve(explicit));
  }

  const pathDirs = (env.PATH ?? "").split(path.delimiter).filter((d) => d !== "");
  const candidates: string[] = [];
  for (const dir of pathDirs) {
    candidates.push(dir);
    // A PATH entry may only hold symlinks for some binaries; the directory a
    // symlink resolves to usually holds the full set.
    for (const name of REQUIRED_PG_BINARIES) {
      const resolved = resolveExecutable(path.join(dir, name));
      if (resolved !== undefined) candidates.push(path.dirname(resolved));
    }
  }
  if (options.usePgConfig !== false) {
    const fromPgConfig = pgConfigBindir(pathDirs, env);
    if (fromPgConfig !== undefined) candidates.push(fromPgConfig);
  }
  candidates.push(...(options.searchDirs ?? debianBindirs()));

  const seen = new Set<string>();
  for (const dir of candidates) {
    const key = path.resolve(dir);
    if (seen.has(key)) continue;
    seen.add(key);
    if (missingBinaries(key).length === 0) return withVersion(key);
  }
  throw new Error(NOT_FOUND_MESSAGE);
}

function withVersion(bindir: string): PgBinaries {
  let output: string;
  try {
    output = execFileSync(path.join(bindir, "postgres"), ["--version"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      timeout: 10_000,
    });
  } catch (err) {
    throw new Error(`${path.join(bindir, "postgres")} --version failed: ${(err as Error).message}`);
  }
  // "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
  const match = /\(PostgreSQL\)\s+(\d+(?:\.\d+)*)/.exec(output);
  if (!match?.[1]) throw new Error(`cannot parse PostgreSQL version from: ${output.trim()}`);
  const version = match[1];
  const major = Number(version.split(".")[0]);
  if (major < MIN_MAJOR_VERSION) {
    throw new Error(
      `PostgreSQL ${version} in ${bindir} is too old: the cluster harness needs ${MIN_MAJOR_VERSION} or newer.`,
    );
  }
  return { bindir, version };
}

function missingBinaries(dir: string): string[] {
  return REQUIRED_PG_BINARIES.filter((name) => resolveExecutable(path.join(dir, name)) === undefined);
}

/** Real path of an executable regular file, or undefined. */
function resolveExecutable(file: string): string | undefined {
  try {
    const real = realpathSync(file);
    if (!statSync(real).isFile()) return undefined;
    accessSync(real, constants.X_OK);
    return real;
  } catch {
    return undefined;
  }
}

function pgConfigBindir(pathDirs: string[], env: Record<string, string | undefined>): string | undefined {
  for (const dir of pathDirs) {
    const pgConfig = resolveExecutable(path.join(dir, "pg_config"));
    if (pgConfig === undefined) continue;
    try {
      const out = execFileSync(path.join(dir, "pg_config"), ["--bindir"], {
        encoding: "utf8",
        env: env as NodeJS.ProcessEnv,
        stdio: ["ignore", "pipe", "ignore"],
        timeout: 10_000,
      }).trim();
      return out === "" ? undefined : out;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** /usr/lib/postgresql/<version>/bin, highest version first. */
function debianBindirs(root = "/usr/lib/postgresql"): string[] {
  if (!existsSync(root)) return [];
  let entries: string[];
  try {
    entries = readdirSync(root);
  } catch {
    return [];
  }
  return entries
    .filter((v) => /^\d+(\.\d+)?$/.test(v))
    .sort((a, b) => Number(b) - Number(a))
    .map((v) => path.join(root, v, "bin"));
}

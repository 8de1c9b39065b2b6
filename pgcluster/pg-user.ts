// Runs PostgreSQL binaries as an OS user they accept.
//
// PostgreSQL refuses to run as root. When we are root, every binary runs as
// the `postgres` OS user and every file or directory we create for it is
// chowned to that user. We use util-linux `setpriv` rather than `runuser`:
// setpriv execs the target directly (no PAM, no lingering parent), which
// keeps the postmaster a direct child of Node and lets us arm
// PR_SET_PDEATHSIG so the kernel signals the postmaster when Node dies, even
// by SIGKILL.

import { execFileSync } from "node:child_process";
import { chownSync, readFileSync } from "node:fs";
import path from "node:path";

export interface PgUser {
  /** Set when we switch to another user (we are root); undefined otherwise. */
  readonly uid: number | undefined;
  readonly gid: number | undefined;
  /**
   * Command line that runs `bin args` as the PostgreSQL user. With
   * `parentDeathSignal`, the process receives that signal when our process
   * dies (only where setpriv supports --pdeathsig).
   */
  command(bin: string, args: string[], opts?: { parentDeathSignal?: NodeJS.Signals }): [string, string[]];
  /** Whether `command(..., {parentDeathSignal})` really arms a parent-death signal. */
  readonly supportsParentDeathSignal: boolean;
  /** Give a path we created to the PostgreSQL user (no-op when not root). */
  chown(target: string): void;
  /** Environment for PostgreSQL processes; HOME points somewhere the user can read. */
  env(home: string): NodeJS.ProcessEnv;
}

let cached: PgUser | undefined;

/** The PostgreSQL OS user for this process (cached). */
export function pgUser(): PgUser {
  cached ??= detect();
  return cached;
}

function detect(): PgUser {
  const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
  const setpriv = findSetpriv();
  const pdeath = setpriv !== undefined && setprivHasPdeathsig(setpriv);

  let uid: number | undefined;
  let gid: number | undefined;
  if (isRoot) {
    const ids = lookupUser("postgres");
    if (ids === undefined) {
      throw new Error(
        "running as root, but there is no `postgres` OS user to run PostgreSQL as " +
          "(PostgreSQL refuses to run as root). Install the postgresql package, which creates it, " +
          "or run as a non-root user.",
      );
    }
    ({ uid, gid } = ids);
    // Not runuser/su: they stay around as the postmaster's parent, so the pid
    // we hold would not be the postmaster's and no parent-death signal could
    // reach it.
    if (setpriv === undefined) {
      throw new Error(
        "running as root requires setpriv (util-linux) to run PostgreSQL as the postgres user; " +
          "install util-linux (Debian/Ubuntu: apt-get install util-linux) or run as a non-root user.",
      );
    }
  }

  return {
    uid,
    gid,
    supportsParentDeathSignal: pdeath,
    command(bin, args, opts = {}) {
      const deathSig = pdeath && opts.parentDeathSignal ? ["--pdeathsig", opts.parentDeathSignal.replace(/^SIG/, "")] : [];
      if (uid === undefined) {
        return deathSig.length > 0 ? [setpriv!, [...deathSig, "--", bin, ...args]] : [bin, args];
      }
      return [setpriv!, [`--reuid=${uid}`, `--regid=${gid}`, "--clear-groups", ...deathSig, "--", bin, ...args]];
    },
    chown(target) {
      if (uid !== undefined && gid !== undefined) chownSync(target, uid, gid);
    },
    env(home) {
      const env: NodeJS.ProcessEnv = { ...process.env };
      // Host settings such as PGHOST, PGSSLMODE or PGOPTIONS would leak into
      // initdb/pg_basebackup defaults; we pass everything explicitly instead.
      for (const key of Object.keys(env)) if (key.startsWith("PG")) delete env[key];
      if (uid !== undefined) env.HOME = home;
      return env;
    },
  };
}

function findSetpriv(): string | undefined {
  if (process.platform !== "linux") return undefined;
  for (const dir of [...(process.env.PATH ?? "").split(path.delimiter), "/usr/bin", "/bin"]) {
    if (dir === "") continue;
    const candidate = path.join(dir, "setpriv");
    try {
      execFileSync(candidate, ["--version"], { stdio: "ignore", timeout: 5_000 });
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

function setprivHasPdeathsig(setpriv: string): boolean {
  try {
    const help = execFileSync(setpriv, ["--help"], { encoding: "utf8", timeout: 5_000 });
    return help.includes("--pdeathsig");
  } catch {
    return false;
  }
}

function lookupUser(name: string): { uid: number; gid: number } | undefined {
  try {
    for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
      const fields = line.split(":");
      if (fields[0] === name && fields[2] !== undefined && fields[3] !== undefined) {
        return { uid: Number(fields[2]), gid: Number(fields[3]) };
      }
    }
  } catch {
    // fall through to id(1), which also consults NSS (LDAP etc.)
  }
  try {
    const uid = Number(execFileSync("id", ["-u", name], { encoding: "utf8", timeout: 5_000 }).trim());
    const gid = Number(execFileSync("id", ["-g", name], { encoding: "utf8", timeout: 5_000 }).trim());
    if (Number.isInteger(uid) && Number.isInteger(gid)) return { uid, gid };
  } catch {
    // no such user
  }
  return undefined;
}

/**
 * `bin args` wrapped so the kernel sends `signal` to it when our process dies,
 * even by SIGKILL (setpriv --pdeathsig, same user). Unwrapped where setpriv
 * cannot do it; callers still stop their children in order on a clean exit.
 */
export function withParentDeathSignal(bin: string, args: string[], signal: NodeJS.Signals = "SIGTERM"): [string, string[]] {
  const setpriv = findSetpriv();
  if (setpriv === undefined || !setprivHasPdeathsig(setpriv)) return [bin, args];
  return [setpriv, ["--pdeathsig", signal.replace(/^SIG/, ""), "--", bin, ...args]];
}

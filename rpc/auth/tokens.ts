import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { invalidArgument } from "../../core/errors.js";
import type { Role } from "./principal.js";

/** One line of a token file. */
export interface TokenEntry {
  readonly name: string;
  readonly role: Role;
}

/** Shorter tokens are refused: a token is a password that a script keeps. */
export const MIN_TOKEN_LENGTH = 16;
const ROLES: readonly Role[] = ["read", "admin", "agent"];

/**
 * Parses a token file: one `NAME ROLE TOKEN` per line, `#` starts a comment.
 * ROLE is read (status, detect, watch, audit, metrics), admin (also failover,
 * recovery, maintenance) or agent (may report as the node NAME). Tokens are
 * kept only as SHA-256 digests.
 */
export function parseTokenFile(text: string, file: string): Map<string, TokenEntry> {
  const byDigest = new Map<string, TokenEntry>();
  const names = new Set<string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/#.*$/, "").trim();
    if (line === "") return;
    const where = `${file}:${i + 1}`;
    const fields = line.split(/\s+/);
    if (fields.length !== 3) throw invalidArgument(`${where}: expected "NAME ROLE TOKEN", got ${fields.length} field(s)`);
    const [name, role, token] = fields as [string, string, string];
    if (!ROLES.includes(role as Role)) throw invalidArgument(`${where}: role "${role}" is not one of ${ROLES.join(", ")}`);
    if (token.length < MIN_TOKEN_LENGTH) {
      throw invalidArgument(`${where}: the token of ${name} is shorter than ${MIN_TOKEN_LENGTH} characters; make one with: openssl rand -hex 32`);
    }
    if (names.has(name)) throw invalidArgument(`${where}: ${name} appears twice; give each token its own name`);
    const digest = digestOf(token);
    if (byDigest.has(digest)) throw invalidArgument(`${where}: the token of ${name} is already given to ${byDigest.get(digest)!.name}`);
    names.add(name);
    byDigest.set(digest, { name, role: role as Role });
  });
  if (byDigest.size === 0) throw invalidArgument(`${file} holds no token; expected lines of "NAME ROLE TOKEN"`);
  return byDigest;
}

export function digestOf(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/**
 * The tokens a server accepts, from --token-file. `reload()` (on SIGHUP)
 * swaps the whole set at once; a file that does not parse leaves the old set
 * in force and says why.
 */
export class TokenStore {
  private entries: Map<string, TokenEntry>;

  constructor(readonly file: string) {
    this.entries = TokenStore.read(file);
  }

  /** The entry a bearer token belongs to, if any. */
  lookup(token: string): TokenEntry | undefined {
    return this.entries.get(digestOf(token));
  }

  get size(): number {
    return this.entries.size;
  }

  /** Reads the file again; throws (keeping the old tokens) when it is not valid. */
  reload(): number {
    this.entries = TokenStore.read(this.file);
    return this.entries.size;
  }

  /** True when others than the owner may read the file. */
  readableByOthers(): boolean {
    return (statSync(this.file).mode & 0o077) !== 0;
  }

  private static read(file: string): Map<string, TokenEntry> {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      throw invalidArgument(`--token-file ${file}: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (err as Error).message}`);
    }
    return parseTokenFile(text, file);
  }
}

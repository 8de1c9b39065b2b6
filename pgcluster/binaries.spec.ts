import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findPgBinaries, REQUIRED_PG_BINARIES } from "./index.js";

describe("findPgBinaries", () => {
  let scratch: string;
  let real: { bindir: string; version: string };

  beforeAll(() => {
    scratch = mkdtempSync(path.join(os.tmpdir(), "autonomy-pgbin-"));
    real = findPgBinaries();
  });

  afterAll(() => {
    rmSync(scratch, { recursive: true, force: true });
  });

  it("finds a directory holding every server binary on this machine", () => {
    expect(real.version).toMatch(/^\d+(\.\d+)*$/);
    expect(Number(real.version.split(".")[0])).toBeGreaterThanOrEqual(12);
    // Searching only that directory finds it again.
    expect(findPgBinaries({ env: { PATH: "" }, usePgConfig: false, searchDirs: [real.bindir] })).toEqual(real);
  });

  it("resolves PATH symlinks to the directory that holds the full set", () => {
    // Like /usr/local/bin here: links for some binaries only.
    const dir = mkdtempSync(path.join(scratch, "partial-"));
    for (const name of ["initdb", "pg_ctl", "postgres"]) symlinkSync(path.join(real.bindir, name), path.join(dir, name));
    const found = findPgBinaries({ env: { PATH: dir }, usePgConfig: false, searchDirs: [] });
    expect(found.bindir).toBe(real.bindir);
  });

  it("honours AUTONOMY_PG_BINDIR", () => {
    const dir = mkdtempSync(path.join(scratch, "explicit-"));
    for (const name of REQUIRED_PG_BINARIES) symlinkSync(path.join(real.bindir, name), path.join(dir, name));
    const found = findPgBinaries({ env: { AUTONOMY_PG_BINDIR: dir, PATH: "" }, searchDirs: [] });
    expect(found).toEqual({ bindir: dir, version: real.version });
  });

  it("rejects an AUTONOMY_PG_BINDIR that lacks binaries, naming the missing ones", () => {
    const empty = mkdtempSync(path.join(scratch, "empty-"));
    expect(() => findPgBinaries({ env: { AUTONOMY_PG_BINDIR: empty, PATH: "" }, searchDirs: [] })).toThrow(
      /AUTONOMY_PG_BINDIR=.*missing: initdb, postgres, pg_ctl, pg_basebackup/,
    );
  });

  it("says what to install when nothing is found", () => {
    const empty = mkdtempSync(path.join(scratch, "nothing-"));
    let message = "";
    try {
      findPgBinaries({ env: { PATH: empty }, searchDirs: [empty] });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain("PostgreSQL server binaries (initdb, postgres, pg_ctl, pg_basebackup) not found");
    expect(message).toContain("apt-get install postgresql");
    expect(message).toContain("AUTONOMY_PG_BINDIR");
  });
});

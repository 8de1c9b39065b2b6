// The chaos run and the benchmarks run the compiled CLI (dist/), as users
// do: its processes start several times faster than through tsx, which
// matters when faults restart them, and they carry no compiler in memory. A
// dist/ older than the sources would run old code, so it is rebuilt first
// whenever a source file is newer.

import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import path from "node:path";

const ROOT = new URL("..", import.meta.url).pathname;
export const BIN = path.join(ROOT, "dist/bin/autonomy.js");
const SOURCES = ["agent", "bin", "cli", "client", "coordinator", "core", "db", "gen", "pgcluster", "rpc"];

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(full));
    else if (/\.(ts|js|mjs|html|css)$/.test(entry.name) && !/\.spec\.ts$/.test(entry.name)) newest = Math.max(newest, statSync(full).mtimeMs);
  }
  return newest;
}

/** Builds dist/ when it is missing or older than a source file; throws with the build's output when that fails. */
export function ensureBuilt(print: (line: string) => void): void {
  const built = existsSync(BIN) ? statSync(BIN).mtimeMs : 0;
  const sources = Math.max(...SOURCES.map((d) => newestSource(path.join(ROOT, d))));
  if (built >= sources) return;
  print(built === 0 ? "building dist/ (missing)" : "rebuilding dist/ (the sources are newer)");
  const r = spawnSync(process.execPath, [path.join(ROOT, "scripts/build.mjs")], { cwd: ROOT, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`npm run build failed:\n${r.stdout}${r.stderr}`);
}

import { readFile } from "node:fs/promises";
import path from "node:path";
import { columns } from "../stats.js";

/**
 * `node --import tsx bench/report/cpu-profile.ts FILE.cpuprofile [TOP]`: the
 * functions with the most self time in a V8 CPU profile (as written with
 * BENCH_CPU_PROF_DIR), with their share of the sampled time, to say what
 * limits a benchmark without opening DevTools.
 */
interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
}
interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface SelfTime {
  /** "function file:line" for a function, the file alone for a file. */
  readonly where: string;
  /** The file, "" for V8's and Node's own (GC, idle, builtins). */
  readonly file: string;
  readonly ms: number;
  readonly share: number;
}

/** Self time per function (name, file and line), largest first; shares are of the busy time, "(idle)" left out. */
export function selfTimes(profile: CpuProfile): SelfTime[] {
  const byNode = new Map(profile.nodes.map((n) => [n.id, n]));
  const totals = new Map<string, { file: string; us: number }>();
  let all = 0;
  profile.samples.forEach((id, i) => {
    // A sample's delta is the time since the previous one, charged to the function on top of the stack.
    const us = Math.max(0, profile.timeDeltas[i] ?? 0);
    const frame = byNode.get(id)!.callFrame;
    const file = shortUrl(frame.url);
    const where = `${frame.functionName || "(anonymous)"}${file ? ` ${file}:${frame.lineNumber + 1}` : ""}`;
    totals.set(where, { file, us: (totals.get(where)?.us ?? 0) + us });
    if (frame.functionName !== "(idle)") all += us;
  });
  totals.delete("(idle)");
  return [...totals.entries()].map(([where, { file, us }]) => ({ where, file, ms: us / 1000, share: all > 0 ? us / all : 0 })).sort((a, b) => b.ms - a.ms);
}

/** Self time per file (a function's "file:line" with the line dropped), largest first. */
export function byFile(times: readonly SelfTime[]): SelfTime[] {
  const files = new Map<string, SelfTime>();
  for (const t of times) {
    const file = t.file || "(V8 and Node built-ins, GC)";
    const had = files.get(file);
    files.set(file, { where: file, file, ms: (had?.ms ?? 0) + t.ms, share: (had?.share ?? 0) + t.share });
  }
  return [...files.values()].sort((a, b) => b.ms - a.ms);
}

/** Our files relative to the repository, dependencies from node_modules on, Node's own as they are. */
function shortUrl(url: string): string {
  const file = url.replace(/^file:\/\//, "");
  const dep = file.lastIndexOf("node_modules/");
  if (dep >= 0) return file.slice(dep + "node_modules/".length);
  return file.startsWith("/") ? path.relative(process.cwd(), file) : file;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [file, top = "25"] = process.argv.slice(2);
  if (!file) {
    process.stderr.write("usage: node --import tsx bench/report/cpu-profile.ts FILE.cpuprofile [TOP]\n");
    process.exit(2);
  }
  const all = selfTimes(JSON.parse(await readFile(file, "utf8")) as CpuProfile);
  const busy = all.reduce((sum, r) => sum + r.ms, 0);
  process.stdout.write(`busy ${(busy / 1000).toFixed(1)} s sampled (idle left out); self time, largest first:\n`);
  const rows = (times: readonly SelfTime[], what: string) => columns([["self ms", "share", what], ...times.slice(0, Number(top)).map((r) => [r.ms.toFixed(0), `${(r.share * 100).toFixed(1)}%`, r.where])]);
  process.stdout.write(`${rows(all, "function")}\n\nby file:\n${rows(byFile(all), "file")}\n`);
}

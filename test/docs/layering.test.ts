import { describe, expect, it } from "vitest";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, posix, relative } from "node:path";

/*
 * Keeps the dependency direction of docs/architecture.md ("Parts and the one
 * direction of dependencies") true: each part imports only the parts below it.
 * A relative import that climbs into a part it may not use fails here, with
 * the file and the import named.
 */

const ROOT = new URL("../../", import.meta.url).pathname;

/** Which other parts each part may import (its own files are always allowed). */
const allowed: Record<string, readonly string[]> = {
  core: [],
  gen: [],
  pgcluster: [],
  db: ["core"],
  rpc: ["core", "gen"],
  agent: ["core", "db", "rpc", "gen"],
  coordinator: ["core", "db", "rpc", "gen"],
  client: ["core", "rpc", "gen"],
  cli: ["core", "db", "rpc", "gen", "agent", "coordinator", "pgcluster", "client"],
};

/** Every module specifier of a TypeScript source: static, re-export, side-effect and dynamic imports. */
function importSpecifiers(source: string): string[] {
  const found: string[] = [];
  const patterns = [
    /\b(?:import|export)\s[^'"`;]*?\bfrom\s*["']([^"']+)["']/gs,
    /\bimport\s*["']([^"']+)["']/g,
    /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g,
  ];
  for (const pattern of patterns) for (const m of source.matchAll(pattern)) found.push(m[1]!);
  return found;
}

/** The part (top-level folder) a relative import from `file` lands in, or undefined for packages. */
function targetPart(file: string, specifier: string): string | undefined {
  if (!specifier.startsWith(".")) return undefined;
  const target = posix.normalize(posix.join(dirname(file), specifier));
  return target.split("/")[0];
}

function sourcesOf(part: string): string[] {
  return (readdirSync(join(ROOT, part), { recursive: true }) as string[])
    .filter((f) => f.endsWith(".ts"))
    .map((f) => relative(ROOT, join(ROOT, part, f)).split("\\").join("/"));
}

describe("layering", () => {
  it("finds every kind of import in a source", () => {
    const source = [
      'import { a } from "../cli/a.js";',
      'import type {\n  B,\n  C,\n} from "../coordinator/b.js";',
      'export { d } from "../agent/d.js";',
      'import "../db/side-effect.js";',
      'const e = await import("../rpc/e.js");',
      'import { parseArgs } from "node:util";',
    ].join("\n");
    expect(importSpecifiers(source).sort()).toEqual(
      ["../agent/d.js", "../cli/a.js", "../coordinator/b.js", "../db/side-effect.js", "../rpc/e.js", "node:util"].sort(),
    );
  });

  it.each(Object.keys(allowed))("%s/ imports only the parts below it", (part) => {
    const violations: string[] = [];
    for (const file of sourcesOf(part)) {
      for (const specifier of importSpecifiers(readFileSync(join(ROOT, file), "utf8"))) {
        const target = targetPart(file, specifier);
        if (target === undefined || target === part) continue;
        if (!allowed[part]!.includes(target)) violations.push(`${file} imports "${specifier}" (${part}/ may import ${allowed[part]!.join(", ") || "no other part"})`);
      }
    }
    expect(violations).toEqual([]);
  });
});

import { describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";

const root = new URL("../..", import.meta.url).pathname;
const buf = join(root, "node_modules/.bin/buf");

function listFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? listFiles(p) : [p];
  });
}

describe("generated code", () => {
  it("gen/ is exactly what buf generate makes from proto/", () => {
    const out = mkdtempSync(join(tmpdir(), "autonomy-gen-"));
    try {
      const template = JSON.parse(JSON.stringify({
        version: "v2",
        clean: true,
        plugins: [{ local: join(root, "node_modules/.bin/protoc-gen-es"), out, opt: ["target=ts", "import_extension=js"] }],
      }));
      const templatePath = join(out, "..", `${out.split("/").pop()}.buf.gen.json`);
      writeFileSync(templatePath, JSON.stringify(template));
      try {
        execFileSync(buf, ["generate", "--template", templatePath], { cwd: root, stdio: "pipe" });
      } finally {
        rmSync(templatePath, { force: true });
      }
      const fresh = listFiles(out).map((p) => relative(out, p)).sort();
      const committed = listFiles(join(root, "gen")).map((p) => relative(join(root, "gen"), p)).sort();
      expect(committed, "gen/ has other files than buf generate makes; run npm run generate").toEqual(fresh);
      for (const file of fresh) {
        expect(readFileSync(join(root, "gen", file), "utf8"), `gen/${file} is stale; run npm run generate`).toBe(
          readFileSync(join(out, file), "utf8"),
        );
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it("buf lint is clean", () => {
    expect(() => execFileSync(buf, ["lint"], { cwd: root, stdio: "pipe" })).not.toThrow();
  });
});

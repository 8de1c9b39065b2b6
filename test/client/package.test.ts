import { describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/*
 * The package as a user gets it: `npm pack` (which builds dist/ through the
 * prepare script), installed into an empty project with npm's cache (the
 * dependencies are there after `npm ci`; npm may still ask the registry for
 * package metadata), where the `autonomy` command and
 * `import … from "autonomy-ha/client"` both work, types included.
 */

const ROOT = new URL("../../", import.meta.url).pathname;

function sh(file: string, args: string[], cwd: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd, env: { ...process.env, npm_config_update_notifier: "false" }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (b: Buffer) => (out += b.toString()));
    child.stderr.on("data", (b: Buffer) => (out += b.toString()));
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, out }));
  });
}

describe("the npm package", () => {
  it("packs, installs into an empty project, and works there: npx autonomy --help, and the client with its types", async () => {
    const dir = mkdtempSync(join(tmpdir(), "autonomy-pack-"));
    try {
      const pack = await sh("npm", ["pack", "--pack-destination", dir, "--silent"], ROOT);
      expect(pack.code, pack.out).toBe(0);
      const tarball = readdirSync(dir).find((f) => f.endsWith(".tgz"));
      expect(tarball, pack.out).toBeDefined();
      const app = join(dir, "app");
      await sh("mkdir", [app], dir);
      writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
      const install = await sh("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts", join(dir, tarball!)], app);
      expect(install.code, install.out).toBe(0);

      const help = await sh("npx", ["--no-install", "autonomy", "--help"], app);
      expect(help.code, help.out).toBe(0);
      expect(help.out).toMatch(/^autonomy — leader election, fencing and failover/);
      expect(help.out).toMatch(/\n {2}dev {2,}/);

      writeFileSync(
        join(app, "use.ts"),
        [
          'import { fencedTransaction, followLeader, StaleEpochError, whileLeader, type FollowEvent } from "autonomy-ha/client";',
          "const events: AsyncIterable<FollowEvent> = followLeader({ urls: [\"http://127.0.0.1:1\"], signal: AbortSignal.abort() });",
          "for await (const e of events) console.log(e.type);",
          "console.log([typeof whileLeader, typeof fencedTransaction, new StaleEpochError(1, 2, \"stale\", undefined).name].join(\" \"));",
          "",
        ].join("\n"),
      );
      writeFileSync(
        join(app, "tsconfig.json"),
        JSON.stringify({ compilerOptions: { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", strict: true, outDir: "out", skipLibCheck: true, types: ["node"], typeRoots: [join(ROOT, "node_modules/@types")] }, include: ["use.ts"] }),
      );
      const tsc = await sh(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", "."], app);
      expect(tsc.code, tsc.out).toBe(0);
      const used = await sh(process.execPath, ["out/use.js"], app);
      expect(used.code, used.out).toBe(0);
      expect(used.out.trim()).toBe("function function StaleEpochError");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});

// `npm run build`: the published package in dist/. npm ci runs it through
// `prepare`, npm start through `prestart`. Tests and the checkout's
// bin/autonomy.js run the TypeScript sources through tsx instead.
//   1. tsconfig.build.json: the JavaScript of every part;
//   2. client/tsconfig.json: the declaration files of autonomy-ha/client;
//   3. the web view's static files, which the servers read from beside their code;
//   4. dist/package.json: ESM, and the version core/version.ts reports.
import { execFileSync } from "node:child_process";
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";

const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
for (const project of ["tsconfig.build.json", "client/tsconfig.json"]) {
  execFileSync(process.execPath, [tsc, "-p", project], { stdio: "inherit" });
}
for (const dir of ["agent/serve/ui", "coordinator/live/ui"]) {
  cpSync(dir, `dist/${dir}`, { recursive: true, filter: (f) => !f.endsWith(".ts") });
}
const { version } = JSON.parse(readFileSync("package.json", "utf8"));
writeFileSync("dist/package.json", `${JSON.stringify({ type: "module", version })}\n`);

#!/usr/bin/env node
// The `autonomy` executable, in two places. Here, in a checkout, it runs the
// TypeScript sources through tsx's loader: the tests spawn this file, so
// `npm test` always runs the current sources and needs no build step (and a
// stale dist/ can never be what is tested). `npm run build` compiles this same
// file to dist/bin/autonomy.js, next to the compiled CLI; that copy is the
// package's `bin` (and what `npm start` runs) and loads plain JavaScript,
// which starts several times faster than compiling TypeScript on the fly.
const compiled = import.meta.url.endsWith("/dist/bin/autonomy.js");
if (compiled) {
  await import("../cli/main.js");
} else {
  const { register } = await import("tsx/esm/api");
  register();
  // A variable, so the compiler leaves this import alone when it builds dist/.
  const sources = "../cli/main.ts";
  await import(sources);
}

#!/usr/bin/env node
// Bundles the CLI that tsc compiled (dist/cli/main.js and what it imports) into
// dist/bundle/, which bin/troupe runs: Node loads about 150 modules for
// `troupe run` otherwise (zod alone is 44 files), about 100-200 ms of start-up
// on the development machines before the first task can start
// (bench/README.md). What only some commands need (the server, the client)
// is split into chunks loaded when they are; the server's HTTP stack and
// SQLite's native module are loaded from node_modules as they are.
//
// Paths taken from import.meta.url stay right: dist/bundle/ is as deep as
// dist/cli/ and dist/runtime/ (package.json and native/build/ two levels up),
// and the template worker is copied next to the chunks.
import { copyFileSync, rmSync } from "node:fs";
import { build } from "esbuild";

const root = new URL("..", import.meta.url).pathname;
const out = `${root}dist/bundle`;
rmSync(out, { recursive: true, force: true });
await build({
  entryPoints: [`${root}dist/cli/main.js`],
  outdir: out,
  bundle: true,
  splitting: true,
  chunkNames: "chunk-[hash]",
  format: "esm",
  platform: "node",
  target: "node20",
  external: ["better-sqlite3", "fastify", "@fastify/swagger"],
  // CommonJS packages in an ES module bundle: their require() calls need one.
  banner: {
    js: 'import { createRequire as troupeCreateRequire } from "node:module"; const require = troupeCreateRequire(import.meta.url);',
  },
  sourcemap: true,
  logLevel: "warning",
});
copyFileSync(`${root}dist/spec/template/render-worker.mjs`, `${out}/render-worker.mjs`);

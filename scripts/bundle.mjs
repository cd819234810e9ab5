#!/usr/bin/env node
// Bundles the CLI that tsc compiled (dist/cli/main.js and what it imports) into
// one CommonJS file, dist/bundle/troupe.cjs, which bin/troupe runs with a V8
// code cache (dist/bundle/troupe.cjs.cache, made here by one `troupe plan`
// and remade by bin/troupe whenever V8 refuses it; `troupe run` adds one per
// runtime, troupe.cjs.run-RUNTIME.cache, at its first run: bin/troupe says
// how). Otherwise Node loads and compiles about 150 modules for `troupe run`
// (zod alone is 44 files) before the first task can start: 250-400 ms on the
// development machines, against about 150 ms this way (bench/README.md).
// Modules that only some commands need (the server, the client) are still only
// run when one of those does; the server's HTTP stack, SQLite's compiled addon
// and the logger come from node_modules.
//
// Paths taken from import.meta.url stay right: dist/bundle/ is as deep as
// dist/cli/ and dist/runtime/ (package.json and native/build/ two levels up),
// and the template worker and the Slurm member helper are copied next to the bundle.
import { execFileSync } from "node:child_process";
import { copyFileSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { build } from "esbuild";

const root = new URL("..", import.meta.url).pathname;
const out = `${root}dist/bundle`;
rmSync(out, { recursive: true, force: true });
await build({
  entryPoints: [`${root}dist/cli/main.js`],
  outfile: `${out}/troupe.cjs`,
  bundle: true,
  format: "cjs",
  platform: "node",
  target: "node20",
  // pino too: loaded only by a command that logs to a file (util/log.ts), and its transports resolve files by path.
  // The AWS SDK too: loaded only by a run that moves `url:` data (data/s3-store.ts). And the Kubernetes client:
  // loaded only by the Kubernetes runtime (runtime/index.ts loadKubernetesRuntime); bundled, its code was a third of
  // the bundle that every command reads and compiles.
  // better-sqlite3's JavaScript is bundled (in the code cache with the rest; as an external module its dozen files
  // were read and compiled at every start); its compiled addon is loaded from node_modules (store/run-store.ts).
  external: [
    "fastify",
    "@fastify/swagger",
    "@fastify/static",
    "pino",
    "@aws-sdk/client-s3",
    "@aws-sdk/lib-storage",
    "@kubernetes/client-node",
  ],
  define: { "import.meta.url": "troupeModuleUrl" },
  banner: { js: 'var troupeModuleUrl = require("node:url").pathToFileURL(__filename).href;' },
  sourcemap: true,
  logLevel: "warning",
});
// ASCII only, so that bin/troupe may read the bundle as latin1: UTF-8's decoding of its 2.4 MB took 8-10 ms of
// every start here, latin1's 1 ms. esbuild escapes what is not ASCII in code, but keeps comments as they are: what
// is left is escaped here the same way (a \uXXXX in a comment is a comment still).
const bundled = `${out}/troupe.cjs`;
const text = readFileSync(bundled, "utf8");
writeFileSync(
  bundled,
  text.replace(/[^\x00-\x7f]/g, (unit) => `\\u${unit.charCodeAt(0).toString(16).padStart(4, "0")}`),
);
copyFileSync(`${root}dist/spec/template/render-worker.mjs`, `${out}/render-worker.mjs`);
// The Slurm runtime's member helper, which it copies to the cluster's shared file system.
copyFileSync(`${root}dist/runtime/slurm/member-helper.mjs`, `${out}/member-helper.mjs`);
copyFileSync(`${root}dist/runtime/slurm/member-masker.mjs`, `${out}/member-masker.mjs`);
copyFileSync(`${root}dist/runtime/slurm/member-container.mjs`, `${out}/member-container.mjs`);
// The code cache: written by bin/troupe when it finds none.
execFileSync(process.execPath, [`${root}bin/troupe`, "plan", `${root}examples/parallel_tasks.yaml`], { stdio: "ignore" });

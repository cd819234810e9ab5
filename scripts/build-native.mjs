#!/usr/bin/env node
// Builds native/spawner.c and sandbox.c into native/build/troupe-spawner, the helper that
// forks the host runtime's sandboxes (src/runtime/host/spawner.ts). Optional:
// without a C compiler troupe still works, with Node's own (slower) spawn.
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";

const root = new URL("..", import.meta.url).pathname;
const out = `${root}native/build/troupe-spawner`;
mkdirSync(`${root}native/build`, { recursive: true });
const compiler = process.env.CC ?? "cc";
const result = spawnSync(
  compiler,
  ["-O2", "-Wall", "-Wextra", "-Werror", "-o", out, `${root}native/spawner.c`, `${root}native/sandbox.c`],
  { stdio: "inherit" },
);
if (result.status !== 0) {
  const why = result.error ? result.error.message : `exit code ${result.status}`;
  process.stderr.write(
    `troupe: the spawner helper was not built (${compiler}: ${why}); tasks start through Node's spawn instead, about 2 ms slower each\n`,
  );
}

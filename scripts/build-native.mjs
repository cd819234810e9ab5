#!/usr/bin/env node
// Builds troupe's two small C helpers into native/build/:
// - troupe-spawner (spawner.c, sandbox.c, sandbox-confine.c, keeper.c): forks the host runtime's sandboxes
//   (src/runtime/host/spawner.ts). Optional: without it, Node's own (slower)
//   spawn starts bubblewrap.
// - troupe-init (init.c, static): the containers' entrypoint that holds each
//   command until its group is released (src/runtime/container/). Without it
//   the container runtime cannot hold a barrier and says so. Also the Kubernetes
//   runtime's barrier holder for images without a shell (k8s-holder.c).
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";

const root = new URL("..", import.meta.url).pathname;
mkdirSync(`${root}native/build`, { recursive: true });
const compiler = process.env.CC ?? "cc";
const helpers = [
  {
    name: "troupe-spawner",
    sources: ["spawner.c", "sandbox.c", "sandbox-confine.c", "keeper.c"],
    flags: [],
    without: "tasks start through Node's spawn instead, about 2 ms slower each",
  },
  // Stripped (-s): on Kubernetes it travels in a ConfigMap, which holds at most 1 MiB (src/runtime/kubernetes/init-binary.ts).
  {
    name: "troupe-init",
    sources: ["init.c", "k8s-holder.c"],
    flags: ["-static", "-s"],
    without: "the container runtime is not available, nor the Kubernetes runtime's init holder",
  },
];
for (const { name, sources, flags, without } of helpers) {
  const args = [
    "-O2",
    "-Wall",
    "-Wextra",
    "-Werror",
    ...flags,
    "-o",
    `${root}native/build/${name}`,
    ...sources.map((s) => `${root}native/${s}`),
  ];
  const result = spawnSync(compiler, args, { stdio: "inherit" });
  if (result.status !== 0) {
    const why = result.error ? result.error.message : `exit code ${result.status}`;
    process.stderr.write(`troupe: ${name} was not built (${compiler}: ${why}); ${without}\n`);
  }
}

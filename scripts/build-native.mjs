#!/usr/bin/env node
// Builds troupe's two small C helpers into native/build/:
// - troupe-spawner (spawner.c, sandbox.c, sandbox-template.c, sandbox-confine.c, keeper.c): forks the host runtime's sandboxes
//   (src/runtime/host/spawner.ts). Optional: without it, Node's own (slower)
//   spawn starts bubblewrap.
// - troupe-init (init.c, static): the containers' entrypoint that holds each
//   command until its group is released (src/runtime/container/). Without it
//   the container runtime cannot hold a barrier and says so. Also the Kubernetes
//   runtime's barrier holder for images without a shell (k8s-holder.c).
// - troupe-slurm-helper (slurm-helper*.c, static, with libjansson: Debian's libjansson-dev): a Slurm member's
//   helper on its node for members in troupe's host sandbox (src/runtime/slurm/member-helper.mjs's work
//   without Node.js), which as root builds that sandbox itself (sandbox.c, as troupe-spawner does). Without
//   it those members run the Node.js helper, which needs Node.js on every node.
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";

const root = new URL("..", import.meta.url).pathname;
mkdirSync(`${root}native/build`, { recursive: true });
const compiler = process.env.CC ?? "cc";
const helpers = [
  {
    name: "troupe-spawner",
    sources: ["spawner.c", "sandbox.c", "sandbox-template.c", "sandbox-confine.c", "keeper.c"],
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
  {
    name: "troupe-slurm-helper",
    sources: ["slurm-helper.c", "slurm-helper-sandbox.c", "slurm-helper-masker.c", "sandbox.c", "sandbox-confine.c"],
    flags: ["-static", "-s"],
    libraries: ["-ljansson"],
    without: "Slurm members in troupe's host sandbox run the Node.js helper instead (Node.js needed on every node; apt-get install libjansson-dev to build it)",
  },
];
for (const { name, sources, flags, libraries = [], without } of helpers) {
  const args = [
    "-O2",
    "-Wall",
    "-Wextra",
    "-Werror",
    ...flags,
    "-o",
    `${root}native/build/${name}`,
    ...sources.map((s) => `${root}native/${s}`),
    ...libraries,
  ];
  const result = spawnSync(compiler, args, { stdio: "inherit" });
  if (result.status !== 0) {
    const why = result.error ? result.error.message : `exit code ${result.status}`;
    process.stderr.write(`troupe: ${name} was not built (${compiler}: ${why}); ${without}\n`);
  }
}

#!/usr/bin/env node
// Benchmark: troupe-spawner alone, without troupe (issue 13's floor). Run as
// root after `npm run build`:
//   node bench/spawner-floor.mjs [--tasks 3000] [--parallel 2] [--mounts full|per-task|none] [--rounds 1]
// Starts N sandboxes of `true`, P at once, through the helper's own protocol
// (native/spawner.c), each released in the same write as its start, with the
// directives a flat workflow's task gets (`--mounts none`: the namespaces
// only; `per-task`: only the mounts that must be made for each task, what a
// template mount namespace cloned per task would leave). Reports the wall time
// per task and the CPU per task of the helper itself and of its sandboxes (the
// helper's own and its reaped children's times, from /proc), beside `xargs -P
// N` running `true` the same number of times (its CPU by GNU time), and beside
// bench/sandbox-floor.c, the kernel's price alone: `true` started by a bare
// fork, by a clone into the namespaces, and by that clone plus the mounts no
// task goes without, no troupe at all. What troupe's Node adds on top is the
// rest of task-scale.mjs's figure. Each round runs the helper twice, its
// sandboxes started from a template mount namespace (native/sandbox-template.c,
// the default) and built whole (TROUPE_SANDBOX_TEMPLATE=0), in alternating
// order. Every run's files are removed at the end only: on this machine's ext4
// (no journal) a file made shortly after many were removed costs about 0.2 ms
// of the kernel's CPU (ext4's recently_deleted scan), which would fall on the
// next run.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { loadavg } from "node:os";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    tasks: { type: "string", default: "3000" },
    parallel: { type: "string", default: "2" },
    mounts: { type: "string", default: "full" },
    rounds: { type: "string", default: "1" },
  },
});
const tasks = Number(values.tasks);
const parallel = Number(values.parallel);
const helper = new URL("../native/build/troupe-spawner", import.meta.url).pathname;
/** Each run's own troupe home (hidden from its tasks, as the host runtime hides troupe's), all removed at the end. */
let root = "";
const roots = [];
// What the host runtime hides from a task (troupe's home, and these where the machine has them: sandbox.ts).
const hidden = () => [root, ...["/run/netns", "/run/user", "/run/dbus"].filter((path) => existsSync(path))];

function frame(fields) {
  const text = fields.join("\0") + "\0";
  const out = Buffer.alloc(4 + Buffer.byteLength(text));
  out.writeUInt32LE(out.length - 4, 0);
  out.write(text, 4);
  return out;
}

/** The start of task i, as the host runtime sends it for `true` with --isolation none (user, output, mounts, files). */
function start(i) {
  const output = `${root}/outputs/t${i}/0`;
  const d = ["hostname", `t${i}`, "chdir", "/"];
  if (values.mounts === "per-task") {
    // What differs from task to task: its own /proc, /tmp and /dev/shm (here a tmpfs on /mnt), output, hosts file.
    d.push("user", "65534", "65534", "mkdir", output, "proc", "/proc", "tmpfs", "/tmp", "tmpfs", "/mnt");
    d.push("bind", output, output, "ro-data", "127.0.0.1\tlocalhost\n", "/etc/hosts");
  }
  if (values.mounts === "full") {
    d.push("read-only-root", "user", "65534", "65534", "mkdir", output, "proc", "/proc", "dev", "/dev", "tmpfs", "/tmp");
    for (const path of hidden()) d.push("hide", path);
    d.push("bind", output, output, "ro-data", "127.0.0.1\tlocalhost\n", "/etc/hosts");
    d.push("ro-data", "nameserver 127.0.0.1\n", "/etc/resolv.conf");
    for (const path of hidden()) d.push("seal", path);
  }
  d.push("env", "PATH=/usr/bin:/bin", "--", "true");
  return Buffer.concat([frame(["sandbox", String(i), "file", `${root}/logs/t${i}.log`, ...d]), frame(["release", String(i)])]);
}

/** User+system seconds of the helper itself and of its reaped children (its sandboxes). */
function cpuOf(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  const ticks = (i) => Number(fields[i]) / 100;
  return { own: ticks(11) + ticks(12), children: ticks(13) + ticks(14) };
}

/** `argv` under GNU time: its wall time in ms and its CPU (user + system, its children's included) in s. */
function timedWithCpu(argv) {
  const t0 = performance.now();
  const result = spawnSync("/usr/bin/time", ["-f", "%U %S", ...argv], { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`${argv.join(" ")} failed: ${result.stderr}`);
  const [user, system] = result.stderr.trim().split("\n").pop().split(" ").map(Number);
  return { ms: performance.now() - t0, cpu: user + system };
}

/** N sandboxes through one helper started with `env`; its wall time and CPU. */
async function helperRun(env) {
  const child = spawn(helper, [], { stdio: ["pipe", "pipe", "inherit"], env: { ...process.env, ...env } });
  let next = 0;
  let done = 0;
  let pending = Buffer.alloc(0);
  const t0 = performance.now();
  const finished = new Promise((resolve, reject) => {
    child.stdout.on("data", (data) => {
      pending = Buffer.concat([pending, data]);
      while (pending.length >= 4 && pending.length >= 4 + pending.readUInt32LE(0)) {
        const [op, , rest] = pending
          .subarray(4, 4 + pending.readUInt32LE(0))
          .toString("latin1")
          .split("\0");
        pending = pending.subarray(4 + pending.readUInt32LE(0));
        if (op === "failed" || (op === "exited" && rest !== "0")) reject(new Error(`a task ${op}: ${rest}`));
        if (op !== "exited") continue;
        done++;
        if (next < tasks) child.stdin.write(start(next++));
        else if (done === tasks) resolve(performance.now() - t0);
      }
    });
  });
  for (; next < Math.min(parallel, tasks); next++) child.stdin.write(start(next));
  try {
    const ms = await finished;
    return { ms, cpu: cpuOf(child.pid) };
  } finally {
    child.stdin.end();
  }
}

const perTask = (s) => ((s * 1000) / tasks).toFixed(2);
try {
  console.log(
    `${tasks} sandboxes of true, ${parallel} at once, mounts ${values.mounts}; load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}`,
  );
  const ways = [
    { label: "from a template", env: {} },
    { label: "built whole    ", env: { TROUPE_SANDBOX_TEMPLATE: "0" } },
  ];
  for (let round = 0; round < Number(values.rounds); round++)
    for (const way of round % 2 === 0 ? ways : [...ways].reverse()) {
      root = mkdtempSync("/var/tmp/troupe-spawner-floor-");
      roots.push(root);
      const { ms, cpu } = await helperRun(way.env);
      console.log(
        `  troupe-spawner, ${way.label} ${(ms / tasks).toFixed(2)} ms/task; CPU per task: helper ${perTask(cpu.own)} ms, its sandboxes ${perTask(cpu.children)} ms`,
      );
    }
  const xargs = timedWithCpu(["sh", "-c", `seq ${tasks} | xargs -P ${parallel} -I{} true`]);
  console.log(`  xargs -P ${parallel}               ${(xargs.ms / tasks).toFixed(2)} ms/task; CPU per task ${perTask(xargs.cpu)} ms`);
  const floor = `${root}/sandbox-floor`;
  const built = spawnSync("cc", ["-O2", "-o", floor, new URL("sandbox-floor.c", import.meta.url).pathname], { encoding: "utf8" });
  if (built.status !== 0) throw new Error(`cannot build sandbox-floor.c: ${built.stderr}`);
  for (const way of ["fork", "namespaces", "mounts"]) {
    const run = timedWithCpu([floor, String(tasks), String(parallel), way]);
    console.log(`  sandbox-floor ${way.padEnd(11)} ${(run.ms / tasks).toFixed(2)} ms/task; CPU per task ${perTask(run.cpu)} ms`);
  }
} finally {
  for (const dir of roots) rmSync(dir, { recursive: true, force: true });
}

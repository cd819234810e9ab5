#!/usr/bin/env node
// Benchmark: the container runtime (issue 4). Run as root after `npm run build`
// and `bash scripts/test-images.sh` (with CONTAINERS_CONF=scripts/ci-containers.conf
// on these machines):
//   node bench/container-scale.mjs [--rounds N] [--no-group] [--quiet-wait SECONDS] [--flags-reference]
// 1. 20 single-container tasks (`true` in alpine:3.18) through troupe against
//    the same 20 `podman run --rm` calls from a shell script, all 20 at once in
//    both (troupe's default: tasks without resources all start). One warm-up
//    of each, then N rounds (default 10), each a shell run and a troupe run
//    back to back, the order alternating from round to round. Reported: the
//    median and the best of each, and the median of the rounds' own ratios
//    (the two runs of a round share the machine's load of that moment). Each run
//    waits first for a second in which the CPUs are 90% idle (up to 60 s, or
//    --quiet-wait; 0 does not wait): the machine is shared. --flags-reference
//    adds a third series for reference: the shell with the two podman flags
//    troupe adds (they save podman work; bench/README.md);
// 2. a group of 8 members (ubuntu:24.04): from the group's admission to the last
//    command started (the store's transitions), and the start skew measured
//    inside the containers (`date +%s%N` as each command's first act).
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";

const roundsArg = process.argv.indexOf("--rounds");
const rounds = roundsArg > 0 ? Number(process.argv[roundsArg + 1]) : 10;
const groupRounds = process.argv.includes("--no-group") ? 0 : Math.min(rounds, 5);
const flagsReference = process.argv.includes("--flags-reference");
const troupe = new URL("../bin/troupe", import.meta.url).pathname;
const dir = mkdtempSync("/var/tmp/troupe-cbench-");
const home = join(dir, "home");
const env = { ...process.env, TROUPE_HOME: home, NO_COLOR: "1" };

const quietArg = process.argv.indexOf("--quiet-wait");
/** How long to wait for a quiet machine before each run (0: not at all). */
const quietWaitMs = quietArg > 0 ? Number(process.argv[quietArg + 1]) * 1000 : 60_000;

function sleep(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** The machine's CPU idle share over `ms` (/proc/stat). */
function idleShare(ms) {
  const sample = () => {
    const fields = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
    return { idle: fields[3] + fields[4], total: fields.reduce((a, b) => a + b, 0) };
  };
  const a = sample();
  sleep(ms);
  const b = sample();
  return (b.idle - a.idle) / Math.max(1, b.total - a.total);
}

/** Waits up to `ms` for a second in which the CPUs are at least 90% idle; false when none came. */
function waitQuiet(ms) {
  const deadline = performance.now() + ms;
  do if (idleShare(1000) >= 0.9) return true;
  while (performance.now() < deadline);
  return false;
}

function timeIt(fn) {
  const t0 = performance.now();
  const result = fn();
  return { ms: performance.now() - t0, result };
}

function troupeRun(file) {
  const { ms, result } = timeIt(() =>
    spawnSync(troupe, ["run", file, "--runtime", "container", "--output", "json"], { env, encoding: "utf8", maxBuffer: 1 << 28 }),
  );
  if (result.status !== 0) throw new Error(`troupe run failed (${result.status}): ${result.stderr.slice(-2000)}`);
  return { ms, record: JSON.parse(result.stdout) };
}

try {
  const n = 20;
  const lines = ["workflow:", `  name: containers-${n}`, "  tasks:"];
  for (let i = 0; i < n; i++) lines.push(`  - {name: t${i}, image: "alpine:3.18", command: ["true"]}`);
  const fanFile = join(dir, "fan.yaml");
  writeFileSync(fanFile, lines.join("\n") + "\n");
  const script = join(dir, "podman-run.sh");
  writeFileSync(script, `for i in $(seq ${n}); do podman run --rm --pull=never alpine:3.18 true & done; wait\n`);
  // For reference only (--flags-reference): the shell with the podman flags troupe adds to save podman work.
  const flagsScript = join(dir, "podman-run-flags.sh");
  writeFileSync(
    flagsScript,
    `for i in $(seq ${n}); do podman run --rm --pull=never --log-driver passthrough --cgroups no-conmon alpine:3.18 true </dev/null & done; wait\n`,
  );

  // Warm both paths once (image layers in the page cache, podman's storage).
  troupeRun(fanFile);
  execFileSync("sh", [script], { env });
  const shell = [];
  const ours = [];
  const ratios = [];
  // Before each run: a pause (what the previous one left running, podman's clean-up processes, is done), then,
  // on a machine that others use too, a wait for a quiet second (both runs of a round see the same quiet).
  let busyStarts = 0;
  const pause = () => {
    sleep(1000);
    if (!waitQuiet(quietWaitMs)) busyStarts++;
  };
  const shellRun = () => {
    pause();
    return timeIt(() => execFileSync("sh", [script], { env })).ms;
  };
  const oursRun = () => {
    pause();
    const run = troupeRun(fanFile);
    if (run.record.status !== "COMPLETED") throw new Error(`fan-out ended ${run.record.status}`);
    return run.ms;
  };
  const withFlags = [];
  const flagsRun = () => {
    pause();
    return timeIt(() => execFileSync("sh", [flagsScript], { env })).ms;
  };
  for (let r = 0; r < rounds; r++) {
    let s, t;
    if (flagsReference && r % 3 === 1) withFlags.push(flagsRun());
    if (r % 2 === 0) {
      s = shellRun();
      t = oursRun();
    } else {
      t = oursRun();
      s = shellRun();
    }
    if (flagsReference && r % 3 !== 1) withFlags.push(flagsRun());
    shell.push(s);
    ours.push(t);
    ratios.push(t / s);
  }
  const best = (values) => Math.min(...values);
  const median = (values) => {
    const sorted = [...values].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  };
  const secs = (values) => values.map((v) => (v / 1000).toFixed(2)).join(" ");
  console.log(`${n} single-container tasks, all at once (${rounds} rounds, order alternating):`);
  console.log(
    `  ${n} x podman run (shell, in parallel): median ${(median(shell) / 1000).toFixed(2)} s, best ${(best(shell) / 1000).toFixed(2)} s   [${secs(shell)}]`,
  );
  console.log(
    `  troupe --runtime container:          median ${(median(ours) / 1000).toFixed(2)} s, best ${(best(ours) / 1000).toFixed(2)} s   [${secs(ours)}]`,
  );
  console.log(
    `  ratio: median of the rounds' ratios ${median(ratios).toFixed(2)}x [${ratios.map((v) => v.toFixed(2)).join(" ")}]; ` +
      `of the medians ${(median(ours) / median(shell)).toFixed(2)}x; of the bests ${(best(ours) / best(shell)).toFixed(2)}x`,
  );
  if (flagsReference)
    console.log(
      `  for reference, the shell with troupe's podman flags (--log-driver passthrough --cgroups no-conmon): median ${(median(withFlags) / 1000).toFixed(2)} s, best ${(best(withFlags) / 1000).toFixed(2)} s [${secs(withFlags)}]; troupe against it: ${(median(ours) / median(withFlags)).toFixed(2)}x of the medians`,
    );
  if (quietWaitMs > 0)
    console.log(`  runs started without a quiet second before them (waited ${quietWaitMs / 1000} s): ${busyStarts} of ${2 * rounds}`);

  const members = 8;
  const group = ["workflow:", "  name: group-8", "  groups:", "  - name: eight", "    tasks:"];
  for (let i = 0; i < members; i++)
    group.push(
      `    - {name: m${i}, ${i === 0 ? "lead: true, " : ""}image: "ubuntu:24.04", command: ["sh", "-c", "date +%s%N > {{output}}/started; sleep 1"]}`,
    );
  const groupFile = join(dir, "group.yaml");
  writeFileSync(groupFile, group.join("\n") + "\n");
  const admissions = [];
  const skews = [];
  for (let r = 0; r < groupRounds; r++) {
    const { record } = troupeRun(groupFile);
    if (record.status !== "COMPLETED") throw new Error(`group run ended ${record.status}`);
    const db = new Database(join(home, "troupe.db"), { readonly: true });
    const rows = db
      .prepare("SELECT subject, to_status, time FROM transitions WHERE run_id = ? AND (subject = 'group' OR subject = 'task') ORDER BY id")
      .all(record.id);
    db.close();
    const admitted = rows.find((row) => row.subject === "group" && row.to_status === "INITIALIZING").time;
    const lastStart = Math.max(...rows.filter((row) => row.subject === "task" && row.to_status === "RUNNING").map((row) => row.time));
    admissions.push(lastStart - admitted);
    const started = record.groups[0].tasks.map(
      (_, i) =>
        Number(BigInt(readFileSync(join(home, "runs", record.id, "outputs", `m${i}`, "0", "started"), "utf8").trim()) / 1000n) / 1000,
    );
    skews.push(Math.max(...started) - Math.min(...started));
  }
  if (groupRounds > 0) {
    console.log(`group of ${members} members (ubuntu:24.04), ${groupRounds} runs:`);
    console.log(`  admission -> last command released: ${admissions.map((v) => `${v} ms`).join(", ")}`);
    console.log(`  start skew inside the containers:   ${skews.map((v) => `${v.toFixed(1)} ms`).join(", ")}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

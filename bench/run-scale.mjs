#!/usr/bin/env node
// Benchmark: troupe run on this machine (issue 3). Run as root after `npm run build`:
//   node bench/run-scale.mjs [--quick]
// 1. fan-out of N trivial tasks (`true`), --isolation none and netns, against
//    `xargs -P 2` running the same N commands, timed in the same script;
// 2. a chain of 200 single-task groups: time from one task's end to the next
//    one's start, from the run record (p50, p90);
// 3. a 10,000-task workflow: troupe's own peak RSS (GNU time's %M).
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const quick = process.argv.includes("--quick");
const troupe = new URL("../bin/troupe", import.meta.url).pathname;
// Outside /tmp on purpose: nothing about it, but keeps the tasks' private /tmp simple.
const dir = mkdtempSync("/var/tmp/troupe-bench-");
const env = { ...process.env, TROUPE_HOME: join(dir, "home"), NO_COLOR: "1" };

function fanOut(n) {
  const lines = ["workflow:", `  name: fanout-${n}`, "  tasks:"];
  for (let i = 0; i < n; i++) lines.push(`  - {name: t${i}, image: alpine, command: ["true"]}`);
  return lines.join("\n") + "\n";
}

function chain(n) {
  const lines = ["workflow:", `  name: chain-${n}`, "  tasks:"];
  for (let i = 0; i < n; i++) lines.push(`  - {name: t${i}, image: alpine, command: ["true"]${i ? `, inputs: [{task: t${i - 1}}]` : ""}}`);
  return lines.join("\n") + "\n";
}

function timeIt(fn) {
  const t0 = performance.now();
  const result = fn();
  return { ms: performance.now() - t0, result };
}

/** troupe run, its wall time, its record and its peak RSS. */
function run(file, args) {
  const { ms, result } = timeIt(() =>
    spawnSync("/usr/bin/time", ["-f", "%M", troupe, "run", file, "--output", "json", ...args], {
      env,
      encoding: "utf8",
      maxBuffer: 1 << 30,
    }),
  );
  if (result.status !== 0) throw new Error(`troupe run failed (${result.status}): ${result.stderr.slice(-2000)}`);
  const rssKb = Number(result.stderr.trim().split("\n").pop());
  return { ms, record: JSON.parse(result.stdout), rssMb: rssKb / 1024 };
}

function xargs(n) {
  return timeIt(() => execFileSync("sh", ["-c", `seq ${n} | xargs -P 2 -I{} true`])).ms;
}

const percentile = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
};

try {
  const n = quick ? 300 : 2000;
  const fanFile = join(dir, "fan.yaml");
  writeFileSync(fanFile, fanOut(n));
  console.log(`fan-out of ${n} trivial tasks (best of 2):`);
  const base = Math.min(xargs(n), xargs(n));
  console.log(`  xargs -P 2:             ${(base / 1000).toFixed(2)} s`);
  for (const isolation of ["none", "netns"]) {
    const best = [0, 1].map(() => run(fanFile, ["--isolation", isolation])).sort((a, b) => a.ms - b.ms)[0];
    if (best.record.status !== "COMPLETED") throw new Error(`fan-out ended ${best.record.status}`);
    const overhead = (best.ms - base) / n;
    console.log(
      `  troupe --isolation ${isolation.padEnd(5)} ${(best.ms / 1000).toFixed(2)} s  overhead ${overhead.toFixed(2)} ms/task (${(best.ms / base).toFixed(1)}x xargs)`,
    );
  }

  const chainFile = join(dir, "chain.yaml");
  writeFileSync(chainFile, chain(200));
  const chained = run(chainFile, ["--isolation", "none"]);
  const tasks = chained.record.groups.map((g) => g.tasks[0]);
  const gaps = tasks.slice(1).map((t, i) => Date.parse(t.start_time) - Date.parse(tasks[i].end_time));
  console.log(
    `chain of 200 single-task groups: end -> next start p50 ${percentile(gaps, 50)} ms, p90 ${percentile(gaps, 90)} ms, max ${Math.max(...gaps)} ms`,
  );

  if (!quick) {
    const bigFile = join(dir, "big.yaml");
    writeFileSync(bigFile, fanOut(10_000));
    const big = run(bigFile, ["--isolation", "none"]);
    console.log(`10,000 tasks: ${big.record.status} in ${(big.ms / 1000).toFixed(1)} s, troupe peak RSS ${big.rssMb.toFixed(0)} MB`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

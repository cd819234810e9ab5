#!/usr/bin/env node
// Benchmark: very many independent tasks through `troupe run --runtime host
// --isolation none` (issue 13), against `xargs -P 2` running the same
// commands, in one script. Run after `npm run build`:
//   node bench/task-scale.mjs [--sizes 10000,100000] [--rounds 1] [--parallel 2] [--troupe-parallel N]
//                             [--baseline /path/to/other/bin/troupe]
// Each round runs, per size: xargs, then each troupe (this build, and the
// baseline if given, the order alternating round to round), back to back, so
// that the runs compared share the machine's load of that moment. Reported per
// run: wall time, overhead per task over the xargs run of the same round, and
// troupe's peak RSS (GNU time's %M: the largest process, troupe's Node). Both
// run the same number of commands at once: `xargs -P N` and `--max-parallel N`
// (--parallel N, default 2; the tasks ask for no CPUs, so that is the limit);
// --troupe-parallel 64 gives troupe its default instead, as issue 13 measured.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    sizes: { type: "string", default: "10000,100000" },
    rounds: { type: "string", default: "1" },
    baseline: { type: "string" },
    parallel: { type: "string", default: "2" },
    // troupe's own limit, when it should differ from xargs' (e.g. 64, troupe's default, as the issue measured).
    "troupe-parallel": { type: "string" },
  },
});
const sizes = values.sizes.split(",").map(Number);
const rounds = Number(values.rounds);
const parallel = Number(values.parallel);
const troupeParallel = Number(values["troupe-parallel"] ?? values.parallel);
const builds = [{ label: "this build", bin: new URL("../bin/troupe", import.meta.url).pathname }];
if (values.baseline) builds.push({ label: "baseline", bin: values.baseline });

const dir = mkdtempSync("/var/tmp/troupe-task-scale-");

function fanOut(n) {
  const lines = ["workflow:", `  name: fanout-${n}`, "  tasks:"];
  for (let i = 0; i < n; i++) lines.push(`  - {name: t${i}, image: alpine, command: ["true"]}`);
  return lines.join("\n") + "\n";
}

function timed(command, args, options = {}) {
  const t0 = performance.now();
  const result = spawnSync(command, args, { encoding: "utf8", maxBuffer: 1 << 30, ...options });
  return { ms: performance.now() - t0, result };
}

function xargs(n) {
  const { ms, result } = timed("sh", ["-c", `seq ${n} | xargs -P ${parallel} -I{} true`]);
  if (result.status !== 0) throw new Error(`xargs failed: ${result.stderr}`);
  return ms;
}

/** One troupe run (pretty output, as a user sees it, to a pipe); wall time and peak RSS. */
function troupe(bin, file, home) {
  const env = { ...process.env, TROUPE_HOME: home, NO_COLOR: "1" };
  const { ms, result } = timed(
    "/usr/bin/time",
    ["-f", "%M", bin, "run", file, "--runtime", "host", "--isolation", "none", "--max-parallel", String(troupeParallel)],
    {
      env,
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  if (result.status !== 0) throw new Error(`troupe run failed (${result.status}): ${result.stderr.slice(-2000)}`);
  const rssKb = Number(result.stderr.trim().split("\n").pop());
  return { ms, rssMb: rssKb / 1024 };
}

const results = new Map(); // `${label} ${n}` -> [{ms, rssMb, overhead}]
try {
  console.log(
    `xargs -P ${parallel}, troupe --max-parallel ${troupeParallel}; sizes ${sizes.join(", ")}; ${rounds} round(s); load average ${(
      await import("node:os")
    )
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}`,
  );
  for (let round = 0; round < rounds; round++) {
    for (const n of sizes) {
      const file = join(dir, `fan-${n}.yaml`);
      writeFileSync(file, fanOut(n));
      const base = xargs(n);
      const order = round % 2 === 0 ? builds : [...builds].reverse();
      for (const build of order) {
        const home = join(dir, `home-${build.label.replace(/\W/g, "")}-${n}-${round}`);
        const run = troupe(build.bin, file, home);
        const overhead = (run.ms - base) / n;
        const key = `${build.label} ${n}`;
        results.set(key, [...(results.get(key) ?? []), { ...run, base, overhead }]);
        console.log(
          `round ${round + 1}  ${String(n).padStart(6)} tasks  xargs ${(base / 1000).toFixed(1).padStart(5)} s  ${build.label.padEnd(10)} ${(run.ms / 1000).toFixed(1).padStart(5)} s  overhead ${overhead.toFixed(2)} ms/task (${(run.ms / base).toFixed(2)}x)  peak RSS ${run.rssMb.toFixed(0)} MB`,
        );
        // Removed with the rest at the end, not now: on an ext4 without a journal (this machine's) every file made in
        // the minutes after many were removed costs ext4's recently_deleted scan, which would fall on the next run.
      }
    }
  }
  console.log("\nsummary (median over rounds):");
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  for (const build of builds) {
    const per = sizes.map((n) => {
      const runs = results.get(`${build.label} ${n}`);
      return {
        n,
        overhead: median(runs.map((r) => r.overhead)),
        rss: median(runs.map((r) => r.rssMb)),
        spread: runs.map((r) => r.overhead.toFixed(2)).join(" "),
      };
    });
    for (const p of per)
      console.log(
        `  ${build.label.padEnd(10)} ${String(p.n).padStart(6)} tasks: overhead ${p.overhead.toFixed(2)} ms/task [${p.spread}], peak RSS ${p.rss.toFixed(0)} MB`,
      );
    if (per.length >= 2) {
      const [a, b] = [per[0], per[per.length - 1]];
      console.log(`  ${build.label.padEnd(10)} ${b.n / a.n}x the tasks: ${(b.rss / a.rss).toFixed(1)}x the peak RSS`);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

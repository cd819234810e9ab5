#!/usr/bin/env node
// Benchmark: the container runtime (issue 4). Run as root after `npm run build`
// and `bash scripts/test-images.sh` (with CONTAINERS_CONF=scripts/ci-containers.conf
// on these machines):
//   node bench/container-scale.mjs [--rounds N]
// 1. 20 single-container tasks (`true` in alpine:3.18) through troupe against
//    the same 20 `podman run --rm` calls from a shell script, all 20 at once in
//    both (troupe's default: tasks without resources all start), best of N each;
// 2. a group of 8 members (ubuntu:24.04): from the group's admission to the last
//    command started (the store's transitions), and the start skew measured
//    inside the containers (`date +%s%N` as each command's first act).
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";

const roundsArg = process.argv.indexOf("--rounds");
const rounds = roundsArg > 0 ? Number(process.argv[roundsArg + 1]) : 3;
const troupe = new URL("../bin/troupe", import.meta.url).pathname;
const dir = mkdtempSync("/var/tmp/troupe-cbench-");
const home = join(dir, "home");
const env = { ...process.env, TROUPE_HOME: home, NO_COLOR: "1" };

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

  // Warm both paths once (image layers in the page cache, podman's storage).
  troupeRun(fanFile);
  execFileSync("sh", [script], { env });
  const shell = [];
  const ours = [];
  for (let r = 0; r < rounds; r++) {
    shell.push(timeIt(() => execFileSync("sh", [script], { env })).ms);
    const run = troupeRun(fanFile);
    if (run.record.status !== "COMPLETED") throw new Error(`fan-out ended ${run.record.status}`);
    ours.push(run.ms);
  }
  const best = (values) => Math.min(...values);
  console.log(`${n} single-container tasks, all at once (best of ${rounds}):`);
  console.log(
    `  ${n} x podman run (shell, in parallel): ${(best(shell) / 1000).toFixed(2)} s   [${shell.map((v) => (v / 1000).toFixed(2)).join(", ")}]`,
  );
  console.log(
    `  troupe --runtime container:          ${(best(ours) / 1000).toFixed(2)} s   [${ours.map((v) => (v / 1000).toFixed(2)).join(", ")}]`,
  );
  console.log(`  ratio: ${(best(ours) / best(shell)).toFixed(2)}x`);

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
  for (let r = 0; r < rounds; r++) {
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
  console.log(`group of ${members} members (ubuntu:24.04), ${rounds} runs:`);
  console.log(`  admission -> last command released: ${admissions.map((v) => `${v} ms`).join(", ")}`);
  console.log(`  start skew inside the containers:   ${skews.map((v) => `${v.toFixed(1)} ms`).join(", ")}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}

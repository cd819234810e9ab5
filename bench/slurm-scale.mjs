#!/usr/bin/env node
// Benchmark: troupe on a Slurm cluster (issue 14). Run as root after `npm run build`, with the test cluster up
// (`eval "$(bash scripts/slurm/up.sh)"`, which exports SLURM_CONF and TROUPE_SLURM_*):
//   node bench/slurm-scale.mjs [--rounds N] [--baseline OTHER/bin/troupe]
// 1. Per-task overhead: N independent tasks (each its own group, so its own job) through
//    `troupe run --runtime slurm`, against the same N commands run through plain `srun` from a shell script
//    (all at once, `srun ... &` then `wait`), timed in the same script, alternating, best of --rounds. Three
//    cases: 12 commands that do nothing (`true`: the overhead alone, troupe's own start included), 12 commands
//    of one second (`sleep 1`; the test cluster has 12 CPUs: one wave), and 48 of one second (four waves: the
//    cluster queues what it cannot place). With --baseline, another build's troupe runs each case too, right
//    after this one's, the order of the two alternating from round to round.
// 2. A group of 6 members over the 3 nodes (two CPUs each on four-CPU nodes, packed: two per node): from the
//    group's admission (its SCHEDULING transition) to every command started, and the start skew, from the run
//    record (each start_time is the node's own, as the member's helper saw its command start).
// 3. troupe's fixed cost, which no per-task work can hide when the tasks do nothing: Node.js's empty start
//    (`node -e 0`), `troupe --version`, and a one-task run from the process's start to its run recorded
//    (submit_time), beside the part of the srun script's time for 12 trivial tasks that 1.2x would leave.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";

const argRounds = process.argv.indexOf("--rounds");
const rounds = argRounds > 0 ? Number(process.argv[argRounds + 1]) : 3;
const troupe = new URL("../bin/troupe", import.meta.url).pathname;
const argBaseline = process.argv.indexOf("--baseline");
const baseline = argBaseline > 0 ? process.argv[argBaseline + 1] : undefined;
const shared = process.env.TROUPE_SLURM_SHARED;
const login = process.env.TROUPE_SLURM_LOGIN_ADDRESS;
if (!process.env.SLURM_CONF || !shared || !login) {
  console.error('slurm-scale: no cluster: eval "$(bash scripts/slurm/up.sh)" first');
  process.exit(2);
}
const dir = mkdtempSync(join(shared, "troupe-bench-"));
const env = { ...process.env, TROUPE_HOME: join(dir, "home"), NO_COLOR: "1", TROUPE_RUNTIME: undefined };
const slurmArgs = ["--runtime", "slurm", "--listen-address", login];

const cases = [
  { n: 12, what: "nothing", command: "true" },
  { n: 12, what: "one second", command: "sleep 1" },
  { n: 48, what: "one second", command: "sleep 1" },
];

function fanOut(N, command) {
  const lines = ["workflow:", "  name: slurm-fanout", "  tasks:"];
  for (let i = 0; i < N; i++) lines.push(`  - {name: t${i}, image: alpine, command: ["sh", "-c", "${command}"]}`);
  return lines.join("\n") + "\n";
}

function timed(argv, options) {
  const t0 = performance.now();
  const result = spawnSync(argv[0], argv.slice(1), { encoding: "utf8", maxBuffer: 1 << 28, ...options });
  const ms = performance.now() - t0;
  if (result.status !== 0) throw new Error(`${argv.join(" ")} failed (${result.status}): ${(result.stderr ?? "").slice(-2000)}`);
  return { ms, stdout: result.stdout };
}

function troupeRun(file, extra = [], build = troupe) {
  const { ms, stdout } = timed([build, "run", file, "--output", "json", ...slurmArgs, ...extra], { env });
  return { ms, record: JSON.parse(stdout) };
}

function srunScript(N, command) {
  const script = join(dir, "srun.sh");
  const lines = ["#!/bin/sh"];
  for (let i = 0; i < N; i++) lines.push(`srun -N1 -n1 --job-name=bench-srun-${i} sh -c '${command}' &`);
  lines.push("wait", "");
  writeFileSync(script, lines.join("\n"), { mode: 0o755 });
  return timed(["sh", script], { env: process.env }).ms;
}

const ms = (iso) => Date.parse(iso);
const best = (values) => Math.min(...values);
const fmt = (n) => n.toFixed(0);

let trivialSrunMs = 0;
try {
  console.log(
    `# slurm-scale: best of ${rounds} rounds, alternating; load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}`,
  );
  for (const { n: N, what, command } of cases) {
    const file = join(dir, `fanout-${N}-${what.replace(" ", "-")}.yaml`);
    writeFileSync(file, fanOut(N, command));
    const ours = [];
    const theirs = [];
    const before = [];
    for (let r = 0; r < rounds; r++) {
      theirs.push(srunScript(N, command));
      if (baseline && r % 2 === 1) before.push(troupeRun(file, [], baseline).ms);
      ours.push(troupeRun(file).ms);
      if (baseline && r % 2 === 0) before.push(troupeRun(file, [], baseline).ms);
    }
    const ratio = best(ours) / best(theirs);
    if (command === "true") trivialSrunMs = best(theirs);
    console.log(
      `${N} tasks doing ${what}: srun script ${fmt(best(theirs))} ms, troupe ${fmt(best(ours))} ms: ratio ${ratio.toFixed(2)} ` +
        `(rounds: srun ${theirs.map(fmt).join(", ")}; troupe ${ours.map(fmt).join(", ")})`,
    );
    if (baseline)
      console.log(
        `  baseline ${fmt(best(before))} ms: ratio ${(best(before) / best(theirs)).toFixed(2)} (rounds: ${before.map(fmt).join(", ")})`,
      );
  }

  const six = join(dir, "six.yaml");
  const members = ["m1", "m2", "m3", "m4", "m5", "m6"];
  writeFileSync(
    six,
    [
      "workflow:",
      "  name: slurm-six",
      "  resources:",
      "    default:",
      "      cpu: 2",
      "  groups:",
      "  - name: six",
      "    tasks:",
      ...members.map(
        (m, i) =>
          `    - {name: ${m}, ${i === 0 ? "lead: true, " : ""}image: alpine, command: ["sh", "-c", "${i === 0 ? "sleep 1" : "true"}"]}`,
      ),
      "",
    ].join("\n"),
  );
  const admissions = [];
  const skews = [];
  for (let r = 0; r < rounds; r++) {
    const { record } = troupeRun(six, ["--spread", "pack"]);
    const { stdout } = timed([troupe, "events", record.id, "--output", "json"], { env });
    const scheduling = JSON.parse(stdout).find((e) => e.group === "six" && e.task === null && e.to === "SCHEDULING");
    const starts = record.groups[0].tasks.map((t) => ms(t.start_time));
    const nodes = new Set(record.groups[0].tasks.map((t) => t.ip));
    admissions.push(Math.max(...starts) - ms(scheduling.time));
    skews.push(Math.max(...starts) - Math.min(...starts));
    if (nodes.size !== 3) console.log(`  (round ${r + 1}: the members were on ${nodes.size} nodes)`);
  }
  console.log(
    `group of 6 over 3 nodes: admission to every command started ${admissions.map(fmt).join(", ")} ms; start skew ${skews.map(fmt).join(", ")} ms`,
  );

  const one = join(dir, "one.yaml");
  writeFileSync(one, fanOut(1, "true"));
  const nodeStart = [];
  const version = [];
  const recorded = [];
  for (let r = 0; r < rounds; r++) {
    nodeStart.push(timed([process.execPath, "-e", "0"]).ms);
    version.push(timed([troupe, "--version"], { env }).ms);
    const t0 = Date.now();
    recorded.push(ms(troupeRun(one).record.submit_time) - t0);
  }
  console.log(
    `troupe's fixed cost: node -e 0 ${fmt(best(nodeStart))} ms, troupe --version ${fmt(best(version))} ms, ` +
      `a one-task run recorded ${fmt(best(recorded))} ms after its start; ` +
      `1.2x the srun script of 12 trivial tasks leaves ${fmt(trivialSrunMs * 0.2)} ms for all of troupe's own work`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}

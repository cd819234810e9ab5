#!/usr/bin/env node
// Benchmark: validate + plan of generated large workflows (issue 2).
//   node bench/spec-scale.mjs            (after `npm run build`)
// Each measurement runs in a fresh Node process, so peak memory (maxRSS) is
// that of one validate + plan. The baseline, in the same process, is a bare
// js-yaml load of the same file: the floor any YAML-reading tool pays.
import { readFileSync } from "node:fs";
import { runCases } from "./cases.mjs";

const dist = new URL("../dist/", import.meta.url);

/** `tasks:` with data dependencies: task i reads task i/2 (a tree), every 10th also task i-1. */
export function flatTasks(n) {
  const lines = ["workflow:", `  name: flat-${n}`, "  tasks:"];
  for (let i = 0; i < n; i++) {
    const inputs = i === 0 ? "" : i % 10 === 0 ? `, inputs: [{task: t${i >> 1}}, {task: t${i - 1}}]` : `, inputs: [{task: t${i >> 1}}]`;
    // Tokens in every tenth task; short names keep 100,000 tasks under the 10 MB file limit.
    const command = i === 0 ? "seq, '10'" : i % 10 === 0 ? "cp, '{{input:0}}/x', '{{output}}'" : "run";
    lines.push(`  - {name: t${i}, image: alpine, command: [${command}]${inputs}}`);
  }
  return lines.join("\n") + "\n";
}

/** `groups:` of 10 tasks, each group reading the previous group's lead (a chain). */
export function groupsOfTen(groups) {
  const lines = ["workflow:", `  name: groups-${groups}`, "  groups:"];
  for (let g = 0; g < groups; g++) {
    lines.push(`  - name: g${g}`, "    tasks:");
    for (let t = 0; t < 10; t++) {
      const lead = t === 0 ? ", lead: true" : "";
      const input = g > 0 && t === 0 ? `, inputs: [{task: g${g - 1}t0}]` : "";
      const command = t === 1 ? `ping, '{{host:g${g}t0}}'` : "run";
      lines.push(`    - {name: g${g}t${t}, image: alpine, command: [${command}]${lead}${input}}`);
    }
  }
  return lines.join("\n") + "\n";
}

async function measure(file) {
  const { loadWorkflowSpec } = await import(new URL("spec/index.js", dist).href);
  const { compileWorkflow } = await import(new URL("plan/index.js", dist).href);
  const jsYaml = await import("js-yaml");
  const bytes = readFileSync(file);
  let t0 = performance.now();
  jsYaml.load(bytes.toString("utf8"), { schema: jsYaml.CORE_SCHEMA });
  const baselineMs = performance.now() - t0;
  t0 = performance.now();
  const result = await loadWorkflowSpec(bytes, { baseDir: "." });
  if (!result.ok) throw new Error(`generated spec is invalid: ${JSON.stringify(result.diagnostics.slice(0, 3))}`);
  const validatedMs = performance.now() - t0;
  const plan = compileWorkflow(result.spec);
  const totalMs = performance.now() - t0;
  return {
    bytes: bytes.length,
    tasks: plan.taskCount,
    groups: plan.groups.length,
    baselineMs,
    validateMs: validatedMs,
    totalMs,
    maxRssMb: process.resourceUsage().maxRSS / 1024,
  };
}

if (process.argv[2] === "--child") {
  process.stdout.write(JSON.stringify(await measure(process.argv[3])));
  process.exit(0);
}

const cases = [
  ["flat tasks", 10_000, flatTasks],
  ["flat tasks", 100_000, flatTasks],
  ["groups of 10", 1_000, groupsOfTen],
  ["groups of 10", 10_000, groupsOfTen],
];
const rows = runCases(import.meta.url, cases, 3, "totalMs");
console.log("case                      tasks   size MB  validate+plan s  µs/task  x yaml-load  peak RSS MB");
for (const r of rows) {
  console.log(
    `${`${r.kind} (${r.n})`.padEnd(24)} ${String(r.tasks).padStart(7)} ${(r.bytes / 1e6).toFixed(1).padStart(9)} ${(r.totalMs / 1000).toFixed(2).padStart(16)} ${((r.totalMs * 1000) / r.tasks).toFixed(1).padStart(8)} ${(r.totalMs / r.baselineMs).toFixed(2).padStart(12)} ${r.maxRssMb.toFixed(0).padStart(12)}`,
  );
}
for (const kind of ["flat tasks", "groups of 10"]) {
  const [small, large] = rows.filter((r) => r.kind === kind);
  console.log(`${kind}: 10x the tasks took ${(large.totalMs / small.totalMs).toFixed(1)}x the time (linear = 10x)`);
}

#!/usr/bin/env node
// Benchmark: validation of files with very many problems (issue 11).
//   node bench/spec-diagnostics.mjs        (after `npm run build`)
// Pathological files up to the 10 MB limit: every task's input names a task
// that does not exist, or one task with hundreds of thousands of unknown
// fields. Each measurement runs in a fresh Node process (best of two); the
// baseline, in the same process, is a bare js-yaml load of the same file.
import { readFileSync } from "node:fs";
import { runCases } from "./cases.mjs";

const dist = new URL("../dist/", import.meta.url);

/** `tasks:` whose every input names an unknown task. */
export function unknownInputs(n) {
  const lines = ["workflow:", `  name: unknown-inputs-${n}`, "  tasks:"];
  for (let i = 0; i < n; i++) lines.push(`  - {name: t${i}, image: alpine, command: [run], inputs: [{task: missing${i}}]}`);
  return lines.join("\n") + "\n";
}

/** One task with `n` unknown fields. */
export function unknownFields(n) {
  const lines = ["workflow:", `  name: unknown-fields-${n}`, "  tasks:", "  - name: t0", "    image: alpine", "    command: [run]"];
  for (let i = 0; i < n; i++) lines.push(`    field${i}: ${i}`);
  return lines.join("\n") + "\n";
}

async function measure(file) {
  const { loadWorkflowSpec, MAX_SPEC_BYTES } = await import(new URL("spec/index.js", dist).href);
  const jsYaml = await import("js-yaml");
  const bytes = readFileSync(file);
  if (bytes.length > MAX_SPEC_BYTES) throw new Error(`${file}: over the ${MAX_SPEC_BYTES}-byte limit`);
  let t0 = performance.now();
  jsYaml.load(bytes.toString("utf8"), { schema: jsYaml.CORE_SCHEMA });
  const baselineMs = performance.now() - t0;
  t0 = performance.now();
  const result = await loadWorkflowSpec(bytes);
  const validateMs = performance.now() - t0;
  if (result.ok) throw new Error("generated spec is valid");
  return {
    bytes: bytes.length,
    listed: result.diagnostics.length,
    more: result.diagnostics.at(-1).message,
    baselineMs,
    validateMs,
    maxRssMb: process.resourceUsage().maxRSS / 1024,
  };
}

if (process.argv[2] === "--child") {
  process.stdout.write(JSON.stringify(await measure(process.argv[3])));
  process.exit(0);
}

const cases = [
  ["unknown inputs", 10_000, unknownInputs],
  ["unknown inputs", 125_000, unknownInputs],
  ["unknown fields", 100_000, unknownFields],
  ["unknown fields", 440_000, unknownFields],
];
const rows = runCases(import.meta.url, cases, 2, "validateMs");
console.log("case                       problems  size MB  validate s  x yaml-load  peak RSS MB");
for (const r of rows) {
  console.log(
    `${`${r.kind} (${r.n})`.padEnd(25)} ${String(r.n).padStart(9)} ${(r.bytes / 1e6).toFixed(1).padStart(8)} ${(r.validateMs / 1000).toFixed(2).padStart(11)} ${(r.validateMs / r.baselineMs).toFixed(2).padStart(12)} ${r.maxRssMb.toFixed(0).padStart(12)}`,
  );
}
for (const kind of ["unknown inputs", "unknown fields"]) {
  const [small, large] = rows.filter((r) => r.kind === kind);
  console.log(
    `${kind}: ${(large.n / small.n).toFixed(1)}x the problems took ${(large.validateMs / small.validateMs).toFixed(1)}x the time (linear = ${(large.n / small.n).toFixed(1)}x); listed ${large.listed - 1}, then "${large.more.slice(0, 40)}..."`,
  );
}

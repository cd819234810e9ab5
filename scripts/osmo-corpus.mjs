#!/usr/bin/env node
// Measures how far troupe's validator agrees with OSMO on OSMO's own workflow
// files (its cookbook, test workflows, deployment checks and skill fixtures).
// Not part of CI: it needs a checkout of https://github.com/NVIDIA/OSMO.
//
//   npm run build && node scripts/osmo-corpus.mjs PATH/TO/OSMO [--only-differences] [--json]
//
// A workflow file is any *.yaml / *.yml with a top-level `workflow:` key.
// OSMO's verdict: a file is refused when OSMO's own test scenarios
// (test/scenarios/*.py) expect its submission to fail with its default values
// (`self.workflow("F").expect_failed_submission()` with no `.args(...)`);
// every other file of OSMO's is one OSMO accepts. troupe's verdict is what
// `troupe validate` says of the file (the same loader, localpath files read
// beside the file). Files whose templates need a variable their
// default-values lack (the cookbook's `storage_url`, which its READMEs pass
// with `--set`) are refused by OSMO's strict templates as by troupe's: they
// are validated again with a placeholder for each such variable, as their
// users would submit them, and the line says which were set.
// Exit 0 always: this measures, it does not gate.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const args = process.argv.slice(2);
const onlyDifferences = args.includes("--only-differences");
const asJson = args.includes("--json");
const root = args.find((a) => !a.startsWith("--"));
if (!root || !statSync(root, { throwIfNoEntry: false })?.isDirectory()) {
  process.stderr.write("usage: node scripts/osmo-corpus.mjs PATH/TO/OSMO-CHECKOUT [--only-differences] [--json]\n");
  process.exit(2);
}

const distSpec = new URL("../dist/spec/index.js", import.meta.url);
if (!statSync(distSpec, { throwIfNoEntry: false })) {
  process.stderr.write("dist/ is missing: run `npm run build` first\n");
  process.exit(2);
}
const { loadWorkflowSpec } = await import(distSpec.href);

/** Directories that hold no workflow files of OSMO's own (deployment charts, tooling, caches). */
const SKIPPED_DIRS = new Set([".git", "node_modules", "bazel-out", "charts", "helm", ".github"]);

function* workflowFiles(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!SKIPPED_DIRS.has(entry.name)) yield* workflowFiles(path);
    } else if (/\.ya?ml$/.test(entry.name) && /^workflow:/m.test(readFileSync(path, "utf8"))) {
      yield path;
    }
  }
}

/** The files OSMO's scenarios expect to be refused at submission with their default values. */
function refusedByOsmo(checkout) {
  const refused = new Set();
  const scenarios = join(checkout, "test", "scenarios");
  if (!statSync(scenarios, { throwIfNoEntry: false })?.isDirectory()) return refused;
  for (const name of readdirSync(scenarios).filter((n) => n.endsWith(".py"))) {
    const text = readFileSync(join(scenarios, name), "utf8");
    // One chain: self.workflow("F") [\ newline] .args(...)? ... .expect_failed_submission()
    for (const chain of text.matchAll(/self\.workflow\(\s*"([^"]+)"\s*\)((?:\s*\\?\s*\.\w+\([^)]*\))*)/g)) {
      const calls = chain[2] ?? "";
      if (calls.includes(".expect_failed_submission(") && !calls.includes(".args(")) refused.add(chain[1]);
    }
  }
  return refused;
}

/** A stand-in for a variable the user passes with `--set`: a storage URL where the name says so, else a number. */
function placeholderFor(name) {
  return /url/i.test(name) ? "s3://bucket/placeholder" : "1";
}

async function validateWithPlaceholders(bytes, baseDir) {
  const placeholders = {};
  for (;;) {
    const result = await loadWorkflowSpec(bytes, { baseDir, variables: { set: placeholders } });
    const undefinedVariable = result.diagnostics.find((d) => d.code === "E_TEMPLATE_UNDEFINED");
    const name = undefinedVariable && /`([A-Za-z_]\w*)`/.exec(undefinedVariable.message)?.[1];
    if (!name || name in placeholders || Object.keys(placeholders).length >= 10) return { result, placeholders };
    placeholders[name] = placeholderFor(name);
  }
}

const checkout = resolve(root);
const refused = refusedByOsmo(checkout);
const rows = [];
for (const path of workflowFiles(checkout)) {
  const file = relative(checkout, path);
  const { result, placeholders } = await validateWithPlaceholders(readFileSync(path), dirname(path));
  const errors = result.diagnostics.filter((d) => d.severity === "error");
  const osmo = refused.has(file) ? "refuses" : "accepts";
  const troupe = result.ok ? "accepts" : "refuses";
  rows.push({
    file,
    osmo,
    troupe,
    agree: osmo === troupe,
    set: placeholders,
    errors: errors.map((d) => `${d.line}:${d.column} ${d.code}: ${d.message}`),
  });
}

const agreeing = rows.filter((r) => r.agree).length;
if (asJson) {
  process.stdout.write(JSON.stringify({ files: rows.length, agree: agreeing, rows }, null, 2) + "\n");
} else {
  for (const row of rows) {
    if (onlyDifferences && row.agree) continue;
    const mark = row.agree ? "agree  " : "DIFFER ";
    const set = Object.entries(row.set).map(([k, v]) => ` --set ${k}=${v}`).join("");
    process.stdout.write(`${mark} osmo ${row.osmo}, troupe ${row.troupe}  ${row.file}${set}\n`);
    for (const error of row.agree && row.troupe === "refuses" ? row.errors.slice(0, 1) : row.errors.slice(0, 3)) {
      process.stdout.write(`          ${error}\n`);
    }
  }
  process.stdout.write(`\ntroupe agrees with OSMO on ${agreeing} of ${rows.length} workflow files\n`);
}
// The template workers would keep the process alive.
process.exit(0);

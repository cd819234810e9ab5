/**
 * The real CLI (bin/troupe -> dist/cli/main.js) run as a child process, the
 * way a person or a script runs it: exit codes, stdout/stderr, no colour when
 * not on a terminal.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt } from "../run/helpers.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const BIN = path.join(ROOT, "bin", "troupe");
const ANSI = /\u001b\[/;
/** `FILE:LINE:COL: error E_CODE: message (hint)`; the hint is optional. */
const DIAGNOSTIC =
  /^(?<file>.+?):(?<line>\d+):(?<col>\d+): (?<severity>error|warning) (?<code>[EW]_[A-Z0-9_]+): (?<message>.+?)(?: \((?<hint>.+)\))?$/;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node bin/troupe ...args` with colours off unless `env` says otherwise. */
function troupe(args: string[], options: { input?: string; env?: Record<string, string | undefined> } = {}): Run {
  const env: Record<string, string | undefined> = { ...process.env, NO_COLOR: "1", FORCE_COLOR: undefined, ...options.env };
  for (const key of Object.keys(env)) if (env[key] === undefined) delete env[key];
  const result = spawnSync(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    env: env as NodeJS.ProcessEnv,
    input: options.input ?? "",
    encoding: "utf8",
    timeout: 60_000,
  });
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const nonEmptyLines = (text: string) => text.split("\n").filter((l) => l.trim() !== "");

let dir: string;
function writeSpec(name: string, lines: string[]): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, lines.join("\n") + "\n");
  return file;
}

const VALID = ["workflow:", "  name: ok", "  tasks:", "  - name: a", "    image: alpine:3.18", "    command: [echo, hi]"];
// Line 4: a task without `command`; line 6: a misspelt field.
const INVALID = ["workflow:", "  name: bad", "  tasks:", "  - name: a", "    image: alpine:3.18", "    comand: [echo, hi]"];
// Line 8, column 19: RESCHEDULE while the retry limit is 0 is a warning, not an error.
const WARNING = [...VALID, "    exitActions:", '      RESCHEDULE: "1-5"'];
// Consumer groups listed before their producer; the lead of `train` is its second task.
const PIPELINE = [
  "workflow:",
  "  name: pipeline",
  "  resources:",
  "    big: {cpu: 4, gpu: 1, memory: 1Gi}",
  "  groups:",
  "  - name: train",
  "    tasks:",
  "    - {name: actor, image: alpine:3.18, command: [act], inputs: [{task: prep}]}",
  "    - {name: learner, lead: true, image: alpine:3.18, command: [learn], resource: big}",
  "  - name: report",
  "    tasks:",
  "    - {name: summary, image: alpine:3.18, command: [sum], inputs: [{task: learner}]}",
  "  - name: data",
  "    tasks:",
  "    - {name: prep, image: alpine:3.18, command: [prep]}",
];
// `n` is a number by default; `--set` keeps it one, `--set-string` makes it text.
const TEMPLATED = [
  "default-values:",
  "  n: 1",
  "workflow:",
  '  name: w-{{ n ~ "x" }}',
  "  tasks:",
  "{% for i in range(2) %}",
  "  - name: t{{ i }}",
  "    image: alpine:3.18",
  '    command: ["{% if n is string %}string{% else %}number{% endif %}", "{{ n }}"]',
  "{% endfor %}",
];

beforeAll(async () => {
  await ensureBuilt();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "troupe-cli-"));
}, 180_000);

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe("troupe validate", () => {
  it("exits 0 on the tutorial's parallel_tasks example with no diagnostics", () => {
    const run = troupe(["validate", "examples/parallel_tasks.yaml"]);
    expect(run.stderr).toContain("valid");
    expect(run.stderr).not.toContain("invalid");
    expect(run.stdout).toBe("");
    expect(run.status).toBe(0);
  });

  it("exits 1 on an invalid file with one compiler-style line per problem", () => {
    const file = writeSpec("invalid.yaml", INVALID);
    const run = troupe(["validate", file]);
    expect(run.status).toBe(1);
    const lines = nonEmptyLines(run.stdout);
    expect(lines.length).toBeGreaterThanOrEqual(2);
    for (const line of lines) {
      const m = DIAGNOSTIC.exec(line);
      expect(m, `not compiler-style: ${line}`).not.toBeNull();
      expect(m!.groups!.file).toBe(file);
      expect(m!.groups!.severity).toBe("error");
      expect(m!.groups!.code).toMatch(/^E_/);
    }
    const unknown = lines.find((l) => l.includes("E_UNKNOWN_FIELD"));
    expect(unknown).toBeDefined();
    expect(unknown!.startsWith(`${file}:6:5: error E_UNKNOWN_FIELD: `)).toBe(true);
    expect(unknown).toContain("comand");
    expect(DIAGNOSTIC.exec(unknown!)!.groups!.hint).toContain("command");
    const missing = lines.find((l) => l.includes("E_MISSING_FIELD"));
    expect(missing).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:4:\\d+: error E_MISSING_FIELD: .*command`));
    expect(run.stderr).toContain("invalid");
  });

  it("reports lines of the file as written when a template loop comes first", () => {
    const file = writeSpec("templated-invalid.yaml", [
      "default-values:",
      "  n: 3",
      "workflow:",
      "  name: w",
      "  tasks:",
      "{% for i in range(n) %}",
      "  - {name: t{{ i }}, image: i, command: [x]}",
      "{% endfor %}",
      "  - name: last",
      "    image: i",
      "    command: [x]",
      "    bogus: 1",
    ]);
    const run = troupe(["validate", file]);
    expect(run.status).toBe(1);
    expect(nonEmptyLines(run.stdout)).toEqual([expect.stringMatching(new RegExp(`:12:5: error E_UNKNOWN_FIELD: .*bogus`))]);
  });

  it("prints warnings as `warning W_...` and still exits 0", () => {
    const file = writeSpec("warning.yaml", WARNING);
    const run = troupe(["validate", file]);
    expect(run.status).toBe(0);
    const lines = nonEmptyLines(run.stdout);
    expect(lines).toHaveLength(1);
    const m = DIAGNOSTIC.exec(lines[0]!);
    expect(m).not.toBeNull();
    expect(m!.groups).toMatchObject({ file, line: "8", col: "19", severity: "warning" });
    expect(m!.groups!.code).toMatch(/^W_/);
    expect(lines[0]).toContain(`${file}:8:19: warning W_`);

    // The warning depends on the retry limit: with retries allowed there is nothing to say.
    const allowed = troupe(["validate", file, "--max-retries", "2"]);
    expect(allowed.status).toBe(0);
    expect(allowed.stdout).toBe("");
  });

  it("treats a duplicate key as a warning (last value wins)", () => {
    const file = writeSpec("duplicate.yaml", [...VALID, "    image: ubuntu:24.04"]);
    const run = troupe(["validate", file]);
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`^.+:7:\\d+: warning W_[A-Z_]+: .*image`, "m"));
  });

  it("gives parseable JSON with --output json", () => {
    const bad = troupe(["validate", writeSpec("invalid-json.yaml", INVALID), "--output", "json"]);
    expect(bad.status).toBe(1);
    const report = JSON.parse(bad.stdout) as { valid: boolean; diagnostics: Array<Record<string, unknown>> };
    expect(report.valid).toBe(false);
    expect(report.diagnostics.length).toBeGreaterThanOrEqual(2);
    expect(report.diagnostics).toContainEqual(
      expect.objectContaining({ severity: "error", code: "E_UNKNOWN_FIELD", path: "workflow.tasks[0].comand", line: 6, column: 5 }),
    );

    const warned = troupe(["validate", writeSpec("warning-json.yaml", WARNING), "-o", "json"]);
    expect(warned.status).toBe(0);
    const ok = JSON.parse(warned.stdout) as { valid: boolean; diagnostics: Array<Record<string, unknown>> };
    expect(ok.valid).toBe(true);
    expect(ok.diagnostics).toEqual([expect.objectContaining({ severity: "warning", line: 8, column: 19 })]);

    const clean = JSON.parse(troupe(["validate", "examples/parallel_tasks.yaml", "-o", "json"]).stdout) as Record<string, unknown>;
    expect(clean).toMatchObject({ valid: true, diagnostics: [] });
  });

  it("rejects an unknown --output format as a usage error", () => {
    const run = troupe(["validate", "examples/parallel_tasks.yaml", "--output", "xml"]);
    expect(run.status).toBe(2);
    expect(run.stderr).toContain("xml");
  });

  it("passes --set and --set-string to the template", () => {
    const file = writeSpec("templated.yaml", TEMPLATED);
    const plan = (args: string[]) => {
      const run = troupe(["plan", file, "-o", "json", ...args]);
      expect(run.status, run.stderr).toBe(0);
      return JSON.parse(run.stdout) as { name: string; groups: Array<{ tasks: Array<{ command: unknown[] }> }> };
    };
    const defaults = plan([]);
    expect(defaults.name).toBe("w-1x");
    expect(defaults.groups[0]!.tasks[0]!.command).toEqual([["number"], ["1"]]);

    const set = plan(["--set", "n=7"]);
    expect(set.name).toBe("w-7x");
    expect(set.groups[0]!.tasks[0]!.command).toEqual([["number"], ["7"]]);

    const setString = plan(["--set-string", "n=7"]);
    expect(setString.name).toBe("w-7x");
    expect(setString.groups[0]!.tasks[0]!.command).toEqual([["string"], ["7"]]);
  });

  it("needs --set for an undefined template variable, and reports it by name otherwise", () => {
    const file = writeSpec("undefined.yaml", ["workflow:", "  name: {{ wf_name }}", "  tasks:", "  - {name: a, image: i, command: [x]}"]);
    const missing = troupe(["validate", file]);
    expect(missing.status).toBe(1);
    expect(missing.stdout).toMatch(new RegExp(`:2:\\d+: error E_[A-Z_]+: .*wf_name`));
    const given = troupe(["validate", file, "--set", "wf_name=named"]);
    expect(given.status).toBe(0);
    expect(given.stdout).toBe("");
  });

  it("treats a malformed --set or --set-string as a usage error (exit 2)", () => {
    const file = writeSpec("usage.yaml", VALID);
    for (const flag of ["--set", "--set-string"]) {
      const run = troupe(["validate", file, flag, "novalue"]);
      expect(run.status, `${flag} novalue`).toBe(2);
      expect(run.stderr).toContain("novalue");
      expect(run.stderr).toContain(flag);
      expect(run.stderr).not.toContain("internal error");
    }
  });

  it("treats a --start-timeout that is no duration as a usage error (exit 2) saying what one is", () => {
    const file = writeSpec("start-timeout.yaml", VALID);
    for (const value of ["1.5h", "soon", "-3s"]) {
      const run = troupe(["run", file, "--runtime", "host", "--start-timeout", value]);
      expect(run.status, value).toBe(2);
      expect(run.stderr).toContain(
        `--start-timeout must be an integer followed by one unit: s, m, h or d (for example \`30m\`), got \`${value}\``,
      );
    }
  });

  it("reads the spec from standard input with `-`", () => {
    const ok = troupe(["validate", "-"], { input: VALID.join("\n") + "\n" });
    expect(ok.status).toBe(0);
    const bad = troupe(["validate", "-"], { input: INVALID.join("\n") + "\n" });
    expect(bad.status).toBe(1);
    expect(nonEmptyLines(bad.stdout).some((l) => /^<stdin>:6:5: error E_UNKNOWN_FIELD: /.test(l))).toBe(true);
    const plan = troupe(["plan", "-", "-o", "json"], { input: PIPELINE.join("\n") + "\n" });
    expect(plan.status).toBe(0);
    expect((JSON.parse(plan.stdout) as { taskCount: number }).taskCount).toBe(4);
  });
});

describe("troupe plan", () => {
  it("prints the groups in order, marks the lead and shows what each group waits for", () => {
    const run = troupe(["plan", writeSpec("pipeline.yaml", PIPELINE)]);
    expect(run.status, run.stderr).toBe(0);
    const out = run.stdout;
    const at = (s: string) => out.indexOf(s);
    // Groups appear upstream first, whatever the file's order.
    for (const name of ["data", "train", "report"]) expect(at(name), name).toBeGreaterThanOrEqual(0);
    expect(at("data")).toBeLessThan(at("train"));
    expect(at("train")).toBeLessThan(at("report"));

    const lines = out.split("\n");
    const blockOf = (groupName: string) => {
      // A group's header is the one unindented line naming it; its details follow, indented.
      const start = lines.findIndex((l) => /^\S/.test(l) && new RegExp(`\\b${groupName}\\b`).test(l));
      expect(start, `no header for ${groupName}`).toBeGreaterThanOrEqual(0);
      let end = start + 1;
      while (end < lines.length && lines[end]!.trim() !== "") end++;
      return lines.slice(start, end);
    };
    const waits = (block: string[]) => block.find((l) => /waits/i.test(l)) ?? "";

    const data = blockOf("data");
    const train = blockOf("train");
    const report = blockOf("report");
    expect(waits(data)).not.toMatch(/train|report/);
    expect(waits(train)).toContain("data");
    expect(waits(report)).toContain("train");
    expect(waits(report)).not.toContain("data");

    const learner = train.find((l) => /\blearner\b/.test(l) && !/<-/.test(l)) ?? "";
    const actor = train.find((l) => /\bactor\b/.test(l) && !/<-/.test(l)) ?? "";
    expect(learner).toMatch(/lead/);
    expect(actor).not.toMatch(/lead/);
    // Resources of the gang: the learner's 4 cpu and 1 gpu.
    expect(train.join("\n")).toMatch(/cpu 4/);
    expect(train.join("\n")).toMatch(/gpu 1/);
  });

  it("gives the CompiledWorkflow with --output json", () => {
    const run = troupe(["plan", writeSpec("pipeline-json.yaml", PIPELINE), "--output", "json"]);
    expect(run.status, run.stderr).toBe(0);
    const plan = JSON.parse(run.stdout) as {
      name: string;
      taskCount: number;
      groups: Array<{
        index: number;
        name: string;
        leadIndex: number;
        upstream: number[];
        downstream: number[];
        tasks: Array<{ name: string; lead: boolean }>;
      }>;
    };
    expect(plan.name).toBe("pipeline");
    expect(plan.taskCount).toBe(4);
    expect(plan.groups.map((g) => g.name)).toEqual(["data", "train", "report"]);
    expect(plan.groups.map((g) => g.index)).toEqual([0, 1, 2]);
    expect(plan.groups.map((g) => g.upstream)).toEqual([[], [0], [1]]);
    expect(plan.groups.map((g) => g.downstream)).toEqual([[1], [2], []]);
    expect(plan.groups[1]!.leadIndex).toBe(1);
    expect(plan.groups[1]!.tasks.map((t) => [t.name, t.lead])).toEqual([
      ["actor", false],
      ["learner", true],
    ]);
  });

  it("exits 1 on an invalid file with the diagnostics on stderr", () => {
    const file = writeSpec("plan-invalid.yaml", INVALID);
    const run = troupe(["plan", file]);
    expect(run.status).toBe(1);
    expect(run.stdout).toBe("");
    const diagnostics = nonEmptyLines(run.stderr).filter((l) => DIAGNOSTIC.test(l));
    expect(diagnostics.some((l) => l.startsWith(`${file}:6:5: error E_UNKNOWN_FIELD: `))).toBe(true);
    expect(diagnostics.some((l) => l.includes("E_MISSING_FIELD"))).toBe(true);
  });

  it("plans every tutorial example", () => {
    const expected: Array<[string, number, number]> = [
      ["parallel_tasks.yaml", 3, 3],
      ["group_tasks.yaml", 1, 3],
      ["group_tasks_communication.yaml", 1, 2],
    ];
    for (const [example, groups, tasks] of expected) {
      const run = troupe(["plan", path.join("examples", example), "-o", "json"]);
      expect(run.status, `${example}: ${run.stderr}`).toBe(0);
      const plan = JSON.parse(run.stdout) as { taskCount: number; groups: unknown[] };
      expect([plan.groups.length, plan.taskCount], example).toEqual([groups, tasks]);
    }
  });
});

describe("troupe schema", () => {
  it("prints a JSON Schema whose properties include `workflow`", () => {
    const run = troupe(["schema"]);
    expect(run.status).toBe(0);
    const schema = JSON.parse(run.stdout) as { type?: string; properties: Record<string, { properties?: Record<string, unknown> }> };
    expect(schema.properties).toHaveProperty("workflow");
    expect(Object.keys(schema.properties.workflow!.properties ?? {})).toEqual(expect.arrayContaining(["name", "tasks", "groups"]));
  });
});

describe("help, usage errors and colour", () => {
  it.each([
    "--help",
    "validate --help",
    "plan --help",
    "run --help",
    "list --help",
    "query --help",
    "logs --help",
    "schema --help",
    "help plan",
  ])("`troupe %s` shows usage with an example and exits 0", (args) => {
    const run = troupe(args.split(" "));
    expect(run.status).toBe(0);
    expect(run.stdout).toContain("Example");
    expect(run.stdout).toMatch(/Usage:/);
  });

  it("every command and subcommand's --help has an example", async () => {
    const { buildProgram } = await import("../../src/cli/main.js");
    const paths: string[][] = [];
    const walk = (command: { name(): string; commands: readonly unknown[] }, path: string[]) => {
      for (const sub of command.commands as Array<{ name(): string; commands: readonly unknown[] }>) {
        paths.push([...path, sub.name()]);
        walk(sub, [...path, sub.name()]);
      }
    };
    walk(buildProgram(), []);
    expect(paths.length).toBeGreaterThan(20);
    const without = paths.filter((p) => !/Examples?:\n\s+\$ troupe /.test(troupe([...p, "--help"]).stdout));
    expect(without).toEqual([]);
  });

  it("exits 2 on an unknown command", () => {
    const run = troupe(["frobnicate"]);
    expect(run.status).toBe(2);
    expect(run.stderr).toContain("frobnicate");
  });

  it("exits 2 when the file argument is missing", () => {
    const run = troupe(["validate"]);
    expect(run.status).toBe(2);
    expect(run.stderr.toLowerCase()).toContain("file");
  });

  it("writes no ANSI escape codes when not on a terminal", () => {
    const invalid = writeSpec("colour-invalid.yaml", INVALID);
    const warning = writeSpec("colour-warning.yaml", WARNING);
    const pipeline = writeSpec("colour-pipeline.yaml", PIPELINE);
    const runs = [
      ["validate", invalid],
      ["validate", warning],
      ["validate", "examples/parallel_tasks.yaml"],
      ["plan", pipeline],
      ["plan", invalid],
      ["validate", path.join(dir, "missing.yaml")],
      ["validate", invalid, "--set", "novalue"],
      ["--help"],
    ];
    for (const args of runs) {
      const run = troupe(args, { env: { NO_COLOR: undefined, FORCE_COLOR: undefined } });
      expect(run.stdout + run.stderr, args.join(" ")).not.toMatch(ANSI);
    }
    // The check can see colour: forced colour does produce escape codes.
    const forced = troupe(["validate", invalid], { env: { NO_COLOR: undefined, FORCE_COLOR: "1" } });
    expect(forced.stdout + forced.stderr).toMatch(ANSI);
  });

  it("treats FORCE_COLOR=0 as no colour, as Node.js and most tools do", () => {
    const invalid = writeSpec("colour-zero.yaml", INVALID);
    const run = troupe(["validate", invalid], { env: { NO_COLOR: undefined, FORCE_COLOR: "0" } });
    expect(run.status).toBe(1);
    expect(run.stdout + run.stderr).not.toMatch(ANSI);
  });
});

/**
 * plan/: a validated WorkflowSpec -> CompiledWorkflow. Every spec here goes
 * through the real loader first (templating, YAML, schema, rules), so the
 * compiler is tested on what it will actually receive.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  compileWorkflow,
  exitActionFor,
  expandEnvironmentReferences,
  renderTokenized,
  type CompiledGroup,
  type CompiledTask,
  type CompiledWorkflow,
  type ExitActionRule,
} from "../../src/plan/index.js";
import { loadWorkflowSpec, type LoadOptions } from "../../src/spec/index.js";

async function compileYaml(lines: string[], options: LoadOptions = {}): Promise<CompiledWorkflow> {
  const result = await loadWorkflowSpec(lines.join("\n") + "\n", options);
  expect(result.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
  expect(result.ok).toBe(true);
  expect(result.spec).toBeDefined();
  return compileWorkflow(result.spec!);
}

function group(plan: CompiledWorkflow, name: string): CompiledGroup {
  const found = plan.groups.find((g) => g.name === name);
  if (!found) throw new Error(`no group ${name} in ${plan.groups.map((g) => g.name).join(", ")}`);
  return found;
}

function task(plan: CompiledWorkflow, name: string): CompiledTask {
  for (const g of plan.groups) for (const t of g.tasks) if (t.name === name) return t;
  throw new Error(`no task ${name}`);
}

const names = (plan: CompiledWorkflow) => plan.groups.map((g) => g.name);

/** A one-line flow-style task; `extra` is appended inside the mapping. */
const flowTask = (name: string, extra = "") =>
  `  - {name: ${name}, image: alpine:3.18, command: [echo, ${name}]${extra ? ", " + extra : ""}}`;

describe("groups of a `tasks:` workflow", () => {
  it("becomes one group per task named `<task>-group`, each task its own lead", async () => {
    const plan = await compileYaml(["workflow:", "  name: flat", "  tasks:", flowTask("task-a"), flowTask("task-b"), flowTask("task-c")]);
    expect(names(plan)).toEqual(["task-a-group", "task-b-group", "task-c-group"]);
    expect(plan.taskCount).toBe(3);
    plan.groups.forEach((g, i) => {
      expect(g.index).toBe(i);
      expect(g.tasks).toHaveLength(1);
      expect(g.leadIndex).toBe(0);
      expect(g.tasks[0]!.lead).toBe(true);
      expect(g.tasks[0]!.group).toBe(i);
      expect(g.barrier).toBe(true);
      expect(g.ignoreNonleadStatus).toBe(true);
      expect(g.upstream).toEqual([]);
      expect(g.downstream).toEqual([]);
    });
    expect(plan.groups.map((g) => g.tasks[0]!.name)).toEqual(["task-a", "task-b", "task-c"]);
  });

  it("keeps the workflow name, labels and pool, and has no timeouts when none are given", async () => {
    const plan = await compileYaml([
      "workflow:",
      "  name: meta",
      "  pool: my-pool",
      "  labels: {team: robotics}",
      "  tasks:",
      flowTask("a"),
    ]);
    expect(plan.name).toBe("meta");
    expect(plan.pool).toBe("my-pool");
    expect(plan.labels).toEqual({ team: "robotics" });
    expect(plan.timeouts).toEqual({ execMs: undefined, queueMs: undefined });
  });
});

describe("the group DAG and its topological order", () => {
  it("links a diamond with upstream and downstream indices", async () => {
    const plan = await compileYaml([
      "workflow:",
      "  name: diamond",
      "  tasks:",
      flowTask("a"),
      flowTask("b", "inputs: [{task: a}]"),
      flowTask("c", "inputs: [{task: a}]"),
      flowTask("d", "inputs: [{task: b}, {task: c}]"),
    ]);
    expect(names(plan)).toEqual(["a-group", "b-group", "c-group", "d-group"]);
    expect(plan.groups.map((g) => g.upstream)).toEqual([[], [0], [0], [1, 2]]);
    expect(plan.groups.map((g) => g.downstream)).toEqual([[1, 2], [3], [3], []]);
  });

  it("puts a producer listed after its consumer first, and indices follow the new order", async () => {
    const plan = await compileYaml([
      "workflow:",
      "  name: backwards",
      "  tasks:",
      flowTask("consumer", "inputs: [{task: producer}]"),
      flowTask("producer"),
    ]);
    expect(names(plan)).toEqual(["producer-group", "consumer-group"]);
    expect(group(plan, "producer-group").downstream).toEqual([1]);
    expect(group(plan, "consumer-group").upstream).toEqual([0]);
    expect(task(plan, "consumer").group).toBe(1);
    expect(task(plan, "producer").group).toBe(0);
    // The input points at the producer's compiled position, not its place in the file.
    expect(task(plan, "consumer").inputs).toEqual([{ kind: "task", task: "producer", group: 0 }]);
  });

  it("keeps the file's order among groups that are ready together", async () => {
    const independent = await compileYaml([
      "workflow:",
      "  name: ties",
      "  tasks:",
      ...["zeta", "alpha", "mid", "beta"].map((n) => flowTask(n)),
    ]);
    expect(names(independent)).toEqual(["zeta-group", "alpha-group", "mid-group", "beta-group"]);

    const fanOut = await compileYaml([
      "workflow:",
      "  name: fan",
      "  tasks:",
      flowTask("zz", "inputs: [{task: root}]"),
      flowTask("aa", "inputs: [{task: root}]"),
      flowTask("mm", "inputs: [{task: root}]"),
      flowTask("root"),
    ]);
    expect(names(fanOut)).toEqual(["root-group", "zz-group", "aa-group", "mm-group"]);
    expect(fanOut.groups[0]!.downstream).toEqual([1, 2, 3]);
  });

  it("keeps independent groups in file order around a reordered dependency", async () => {
    const plan = await compileYaml([
      "workflow:",
      "  name: mixed",
      "  tasks:",
      flowTask("consumer", "inputs: [{task: producer}]"),
      flowTask("x"),
      flowTask("producer"),
      flowTask("y"),
    ]);
    const at = (n: string) => names(plan).indexOf(`${n}-group`);
    expect(at("producer")).toBeLessThan(at("consumer"));
    expect(at("x")).toBeLessThan(at("y"));
    expect(at("x")).toBeLessThan(at("producer"));
    expect(plan.groups.map((g) => g.index)).toEqual([0, 1, 2, 3]);
  });

  it("builds group edges from any member's inputs, once per pair of groups", async () => {
    const plan = await compileYaml([
      "workflow:",
      "  name: multi",
      "  groups:",
      "  - name: train",
      "    tasks:",
      "    - {name: learner, lead: true, image: i, command: [x], inputs: [{task: prep-a}, {task: prep-b}]}",
      "    - {name: actor, image: i, command: [x], inputs: [{task: prep-a}]}",
      "  - name: prep",
      "    tasks:",
      "    - {name: prep-a, image: i, command: [x]}",
      "    - {name: prep-b, lead: true, image: i, command: [x]}",
      "  - name: other",
      "    tasks:",
      "    - {name: lone, image: i, command: [x]}",
    ]);
    expect(names(plan)).toEqual(["prep", "train", "other"]);
    expect(group(plan, "train").upstream).toEqual([0]);
    expect(group(plan, "prep").downstream).toEqual([1]);
    expect(group(plan, "other").upstream).toEqual([]);
    expect(task(plan, "actor").inputs).toEqual([{ kind: "task", task: "prep-a", group: 0 }]);
  });
});

describe("leads", () => {
  it("uses the explicit lead wherever it sits in the group", async () => {
    const plan = await compileYaml([
      "workflow:",
      "  name: leads",
      "  groups:",
      "  - name: trio",
      "    barrier: false",
      "    ignoreNonleadStatus: false",
      "    tasks:",
      "    - {name: one, image: i, command: [x]}",
      "    - {name: two, image: i, command: [x]}",
      "    - {name: three, lead: true, image: i, command: [x]}",
      "  - name: solo",
      "    tasks:",
      "    - {name: only, image: i, command: [x]}",
    ]);
    const trio = group(plan, "trio");
    expect(trio.leadIndex).toBe(2);
    expect(trio.tasks.map((t) => t.lead)).toEqual([false, false, true]);
    expect(trio.barrier).toBe(false);
    expect(trio.ignoreNonleadStatus).toBe(false);
    const solo = group(plan, "solo");
    expect(solo.leadIndex).toBe(0);
    expect(solo.tasks[0]!.lead).toBe(true);
    expect(solo.barrier).toBe(true);
    expect(solo.ignoreNonleadStatus).toBe(true);
    expect(plan.taskCount).toBe(4);
  });
});

describe("resources", () => {
  it("resolves each task's resource and sums the group's demand", async () => {
    const plan = await compileYaml([
      "workflow:",
      "  name: res",
      "  resources:",
      "    gpu-box: {cpu: 4, gpu: 2, memory: 1Gi, storage: 512Mi, platform: dgx, nodesExcluded: [node-7]}",
      "    bytes: {cpu: 1, memory: 1073741824, storage: 2048}",
      "  groups:",
      "  - name: mixed",
      "    tasks:",
      "    - {name: big, lead: true, image: i, command: [x], resource: gpu-box}",
      "    - {name: small, image: i, command: [x], resource: bytes}",
      "    - {name: plain, image: i, command: [x]}",
    ]);
    expect(task(plan, "big").resources).toEqual({
      name: "gpu-box",
      cpu: 4,
      gpu: 2,
      memoryBytes: 1073741824,
      storageBytes: 536870912,
      platform: "dgx",
      nodesExcluded: ["node-7"],
    });
    expect(task(plan, "small").resources).toMatchObject({ name: "bytes", cpu: 1, gpu: 0, memoryBytes: 1073741824, storageBytes: 2048 });
    expect(task(plan, "plain").resources).toEqual({
      name: "default",
      cpu: 0,
      gpu: 0,
      memoryBytes: 0,
      storageBytes: 0,
      platform: undefined,
      nodesExcluded: [],
    });
    expect(group(plan, "mixed").demand).toEqual({ cpu: 5, gpu: 2, memoryBytes: 2 * 1073741824, storageBytes: 536870912 + 2048 });
  });

  it("uses an explicit `default` entry for tasks that name no resource", async () => {
    const plan = await compileYaml([
      "workflow:",
      "  name: defres",
      "  resources:",
      "    default: {cpu: 2, memory: 256Mi}",
      "  tasks:",
      flowTask("a"),
      flowTask("b"),
    ]);
    expect(task(plan, "a").resources).toMatchObject({ name: "default", cpu: 2, gpu: 0, memoryBytes: 256 * 1024 * 1024 });
    expect(group(plan, "b-group").demand).toEqual({ cpu: 2, gpu: 0, memoryBytes: 256 * 1024 * 1024, storageBytes: 0 });
  });
});

describe("tokens", () => {
  it("parses tokens into parts and resolves `{{input:name}}` to its index", async () => {
    const plan = await compileYaml([
      "workflow:",
      "  name: tokens",
      "  groups:",
      "  - name: pair",
      "    tasks:",
      "    - {name: server, lead: true, image: i, command: [serve]}",
      "    - name: client",
      "      image: i",
      '      command: ["nc", "{{host:server}}", "80"]',
      '      args: ["{{input:second}}/a {{input:0}} -> {{output}}/{{workflow_id}}"]',
      "      environment: {OUT: '{{output}}/res', PLAIN: hello}",
      "      inputs: [{task: first}, {task: second}]",
      "      outputs: [{url: 's3://bucket/{{workflow_id}}', regex: '.*\\.txt'}]",
      "  - name: feed",
      "    tasks:",
      "    - {name: first, image: i, command: [x]}",
      "    - {name: second, lead: true, image: i, command: [x]}",
    ]);
    const client = task(plan, "client");
    expect(client.command).toEqual([["nc"], [{ kind: "host", task: "server" }], ["80"]]);
    expect(client.args).toEqual([
      [{ kind: "input", index: 1 }, "/a ", { kind: "input", index: 0 }, " -> ", { kind: "output" }, "/", { kind: "workflow_id" }],
    ]);
    expect(client.environment).toEqual({ OUT: [{ kind: "output" }, "/res"], PLAIN: ["hello"] });
    expect(client.outputs).toEqual([{ url: ["s3://bucket/", { kind: "workflow_id" }], regex: ".*\\.txt" }]);
    expect(renderTokenized(client.args[0]!)).toBe("{{input:1}}/a {{input:0}} -> {{output}}/{{workflow_id}}");
    expect(renderTokenized(client.command[1]!)).toBe("{{host:server}}");
  });

  it("resolves `{{input:name}}` by normalised name (case, `_` = `-`)", async () => {
    const plan = await compileYaml([
      "workflow:",
      "  name: norm",
      "  tasks:",
      flowTask("prep-data"),
      flowTask("other"),
      '  - {name: use, image: i, command: ["{{input:Prep_Data}}"], inputs: [{task: other}, {task: prep-data}]}',
    ]);
    expect(task(plan, "use").command).toEqual([[{ kind: "input", index: 1 }]]);
  });
});

describe("`$(VAR)` expansion (Kubernetes rule)", () => {
  it("expands command and args from the task's environment", async () => {
    const plan = await compileYaml([
      "workflow:",
      "  name: envx",
      "  tasks:",
      "  - name: a",
      "    image: i",
      '    command: ["run-$(MODE)", "$(UNSET)", "$$(MODE)"]',
      '    args: ["--mode=$(MODE) --n=$(N)$(N) --e=[$(EMPTY)] {{output}}/$(MODE)"]',
      "    environment: {MODE: fast, N: '7', EMPTY: ''}",
    ]);
    const a = task(plan, "a");
    expect(a.command).toEqual([["run-fast"], ["$(UNSET)"], ["$(MODE)"]]);
    expect(a.args).toEqual([["--mode=fast --n=77 --e=[] ", { kind: "output" }, "/fast"]]);
    // The environment itself keeps its values as written.
    expect(a.environment.MODE).toEqual(["fast"]);
  });

  it("follows the rule directly: defined, undefined, escaped, not recursive", () => {
    const env = { A: "alpha", B: "$(A)" };
    expect(expandEnvironmentReferences("x $(A) y", env)).toBe("x alpha y");
    expect(expandEnvironmentReferences("$(MISSING)", env)).toBe("$(MISSING)");
    expect(expandEnvironmentReferences("$$(A)", env)).toBe("$(A)");
    expect(expandEnvironmentReferences("$(B)", env)).toBe("$(A)");
    expect(expandEnvironmentReferences("$A ${A} $(A", env)).toBe("$A ${A} $(A");
    expect(expandEnvironmentReferences("no references", {})).toBe("no references");
  });

  it("leaves references to names that are not in the environment as written, inherited object keys included", async () => {
    expect(expandEnvironmentReferences("$(constructor) $(toString) $(__proto__)", {})).toBe("$(constructor) $(toString) $(__proto__)");
    const plan = await compileYaml([
      "workflow:",
      "  name: protoenv",
      "  tasks:",
      '  - {name: a, image: i, command: ["$(constructor)", "$(hasOwnProperty)"], environment: {X: y}}',
    ]);
    expect(task(plan, "a").command).toEqual([["$(constructor)"], ["$(hasOwnProperty)"]]);
  });
});

describe("exit actions", () => {
  it("compiles a task's exitActions into a table sorted by code", async () => {
    const plan = await compileYaml(
      [
        "workflow:",
        "  name: exits",
        "  tasks:",
        "  - {name: a, image: i, command: [x], exitActions: {RESCHEDULE: '10-20,3', FAIL: '1', COMPLETE: '0,42'}}",
        flowTask("b"),
      ],
      { maxRetries: 3 },
    );
    expect(task(plan, "a").exitActions).toEqual([
      { action: "COMPLETE", from: 0, to: 0 },
      { action: "FAIL", from: 1, to: 1 },
      { action: "RESCHEDULE", from: 3, to: 3 },
      { action: "RESCHEDULE", from: 10, to: 20 },
      { action: "COMPLETE", from: 42, to: 42 },
    ]);
    expect(task(plan, "b").exitActions).toEqual([]);
    const rules = task(plan, "a").exitActions;
    expect([0, 1, 2, 3, 15, 42].map((c) => exitActionFor(c, rules))).toEqual([
      "COMPLETE",
      "FAIL",
      "FAIL",
      "RESCHEDULE",
      "RESCHEDULE",
      "COMPLETE",
    ]);
  });

  it("looks up task rules, then pool defaults, then 0 = COMPLETE, else FAIL", () => {
    const taskRules: ExitActionRule[] = [
      { action: "COMPLETE", from: 5, to: 5 },
      { action: "RESCHEDULE", from: 10, to: 20 },
    ];
    const pool: ExitActionRule[] = [
      { action: "RESCHEDULE", from: 5, to: 5 },
      { action: "RESCHEDULE", from: 137, to: 137 },
      { action: "FAIL", from: 0, to: 0 },
    ];
    expect(exitActionFor(5, taskRules, pool)).toBe("COMPLETE"); // task rule beats the pool's
    expect(exitActionFor(10, taskRules, pool)).toBe("RESCHEDULE");
    expect(exitActionFor(20, taskRules, pool)).toBe("RESCHEDULE");
    expect(exitActionFor(21, taskRules, pool)).toBe("FAIL");
    expect(exitActionFor(137, taskRules, pool)).toBe("RESCHEDULE"); // pool default
    expect(exitActionFor(0, taskRules, pool)).toBe("FAIL"); // pool default for 0
    expect(exitActionFor(0, taskRules)).toBe("COMPLETE");
    expect(exitActionFor(0, [])).toBe("COMPLETE");
    expect(exitActionFor(1, [])).toBe("FAIL");
    expect(exitActionFor(255, [], [])).toBe("FAIL");
    expect(exitActionFor(3000, [], [])).toBe("FAIL");
    expect(exitActionFor(0, [{ action: "FAIL", from: 0, to: 0 }])).toBe("FAIL");
  });
});

describe("durations", () => {
  it("converts timeouts and checkpoint frequencies to milliseconds", async () => {
    const plan = await compileYaml([
      "workflow:",
      "  name: times",
      "  timeout: {exec_timeout: 10m, queue_timeout: 2s}",
      "  tasks:",
      "  - {name: a, image: i, command: [x], checkpoint: {path: /ckpt, url: 's3://b/{{workflow_id}}', frequency: 1h}}",
    ]);
    expect(plan.timeouts).toEqual({ execMs: 600000, queueMs: 2000 });
    expect(task(plan, "a").checkpoints).toEqual([
      { path: ["/ckpt"], url: ["s3://b/", { kind: "workflow_id" }], frequencyMs: 3600000, regex: undefined },
    ]);

    const days = await compileYaml(["workflow:", "  name: days", "  timeout: {exec_timeout: 2d}", "  tasks:", flowTask("a")]);
    expect(days.timeouts).toEqual({ execMs: 2 * 86400000, queueMs: undefined });
  });
});

describe("files and inputs", () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "troupe-plan-"));
    fs.writeFileSync(path.join(dir, "script.sh"), "echo hi\n");
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("compiles text (with tokens), base64 and local files", async () => {
    const plan = await compileYaml(
      [
        "workflow:",
        "  name: files",
        "  tasks:",
        "  - name: a",
        "    image: i",
        "    command: [sh, /run/script.sh]",
        "    files:",
        "    - {path: /run/config.txt, contents: 'out={{output}}'}",
        "    - {path: /run/blob.bin, contents: 'aGVsbG8=', base64: true}",
        "    - {path: /run/script.sh, localpath: script.sh}",
      ],
      { baseDir: dir },
    );
    expect(task(plan, "a").files).toEqual([
      { path: "/run/config.txt", source: { kind: "text", contents: ["out=", { kind: "output" }] } },
      { path: "/run/blob.bin", source: { kind: "base64", data: "aGVsbG8=" } },
      { path: "/run/script.sh", source: { kind: "local", path: "script.sh" } },
    ]);
  });

  it("compiles task, other-workflow task and url inputs", async () => {
    const plan = await compileYaml([
      "workflow:",
      "  name: inputs",
      "  tasks:",
      "  - name: use",
      "    image: i",
      "    command: [x]",
      "    inputs:",
      "    - task: make",
      "    - task: train-run-12:checkpoint",
      "    - {url: 's3://bucket/data/', regex: '.*\\.parquet'}",
      "    - url: s3://other/",
      "    - {task: make, regex: 'model/.*'}",
      flowTask("make"),
    ]);
    expect(task(plan, "use").inputs).toEqual([
      { kind: "task", task: "make", group: 0 },
      { kind: "workflow-task", workflowId: "train-run-12", task: "checkpoint" },
      { kind: "url", url: "s3://bucket/data/", regex: ".*\\.parquet" },
      { kind: "url", url: "s3://other/", regex: undefined },
      { kind: "task", task: "make", group: 0, regex: "model/.*" },
    ]);
    // Only the in-workflow input makes a dependency.
    expect(names(plan)).toEqual(["make-group", "use-group"]);
    expect(group(plan, "use-group").upstream).toEqual([0]);
  });
});

describe("scale", () => {
  it("compiles a chain of 100,000 single-task groups, written consumer first, without a stack overflow", async () => {
    const n = 100_000;
    const lines = ["workflow:", "  name: chain", "  tasks:"];
    for (let i = n - 1; i >= 0; i--) {
      lines.push(`  - {name: t${i}, image: i, command: [x]${i > 0 ? `, inputs: [{task: t${i - 1}}]` : ""}}`);
    }
    const result = await loadWorkflowSpec(lines.join("\n") + "\n");
    expect(result.diagnostics).toEqual([]);
    const plan = compileWorkflow(result.spec!);
    expect(plan.taskCount).toBe(n);
    expect(plan.groups).toHaveLength(n);
    for (let i = 0; i < n; i++) {
      const g = plan.groups[i]!;
      if (g.name !== `t${i}-group` || g.index !== i) throw new Error(`group ${i} is ${g.name} (index ${g.index})`);
      const up = i === 0 ? [] : [i - 1];
      const down = i === n - 1 ? [] : [i + 1];
      if (g.upstream.join() !== up.join() || g.downstream.join() !== down.join()) throw new Error(`group ${i} has wrong edges`);
    }
  }, 120_000);
});

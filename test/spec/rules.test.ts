import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadWorkflowSpec, parseSize, type Diagnostic, type LoadOptions, type LoadResult } from "../../src/spec/index.js";

// ---- helpers: build YAML line by line, find places in it, pick diagnostics ----

const doc = (...lines: Array<string | string[]>): string => lines.flat().join("\n") + "\n";

/** A task as list-item lines; depth 2 for `workflow.tasks`, 4 for `groups[].tasks`. */
function task(name: string, extra: string[] = [], depth = 2): string[] {
  const pad = "  ".repeat(depth);
  return [`${pad}- name: ${name}`, `${pad}  image: alpine`, `${pad}  command: [echo]`, ...extra.map((l) => `${pad}  ${l}`)];
}
const gtask = (name: string, extra: string[] = []) => task(name, extra, 4);
function group(name: string, tasks: string[][], extra: string[] = []): string[] {
  return [`    - name: ${name}`, ...extra.map((l) => `      ${l}`), "      tasks:", ...tasks.flat()];
}
const tasksWf = (...tasks: string[][]) => doc("workflow:", "  name: wf", "  tasks:", ...tasks);
const groupsWf = (...groups: string[][]) => doc("workflow:", "  name: wf", "  groups:", ...groups);

/** 1-based line and column of the `nth` occurrence of `needle`; `offset` moves within it. */
function at(src: string, needle: string, nth = 0, offset = 0): { line: number; column: number } {
  let index = -1;
  for (let i = 0; i <= nth; i++) {
    index = src.indexOf(needle, index + 1);
    if (index < 0) throw new Error(`${JSON.stringify(needle)} #${nth} not in source`);
  }
  index += offset;
  const before = src.slice(0, index);
  const line = before.split("\n").length;
  return { line, column: index - before.lastIndexOf("\n") };
}
/** Where the value of `key: value` starts. */
const valueAt = (src: string, keyValue: string, nth = 0) => at(src, keyValue, nth, keyValue.indexOf(": ") + 2);

const load = (src: string, options: LoadOptions = {}) => loadWorkflowSpec(src, options);
const errors = (r: LoadResult) => r.diagnostics.filter((d) => d.severity === "error");

/** The one diagnostic with `code` (and `path` when given); fails when there is not exactly one. */
function one(r: LoadResult, code: string, path?: string): Diagnostic {
  const hits = r.diagnostics.filter((d) => d.code === code && (path === undefined || d.path === path));
  expect(hits, `${code} ${path ?? ""} in ${JSON.stringify(r.diagnostics, null, 1)}`).toHaveLength(1);
  return hits[0] as Diagnostic;
}

async function expectOk(src: string, options: LoadOptions = {}): Promise<LoadResult> {
  const r = await load(src, options);
  expect(errors(r), JSON.stringify(r.diagnostics)).toEqual([]);
  expect(r.ok).toBe(true);
  expect(r.spec).toBeDefined();
  return r;
}

/** Expect exactly one error with this code at this path and place, and return it. */
async function expectError(src: string, code: string, path: string, place: { line: number; column: number }, options?: LoadOptions) {
  const r = await load(src, options);
  expect(r.ok).toBe(false);
  expect(r.spec).toBeUndefined();
  const d = one(r, code, path);
  expect(d).toMatchObject({ severity: "error", ...place });
  expect(d.message.length).toBeGreaterThan(0);
  return d;
}

const long = (n: number) => "a" + "b".repeat(n - 1);

// ---- the rules ----

describe("baseline", () => {
  it("accepts a minimal tasks workflow and a minimal groups workflow without diagnostics", async () => {
    expect((await expectOk(tasksWf(task("a")))).diagnostics).toEqual([]);
    const r = await expectOk(groupsWf(group("g", [gtask("a", ["lead: true"]), gtask("b")])));
    expect(r.spec?.workflow.groups?.[0]?.tasks[1]?.name).toBe("b");
  });
});

describe("file level", () => {
  it("rejects an unknown top-level key, with the allowed keys or a did-you-mean hint", async () => {
    const src = doc("workflow:", "  name: wf", "  tasks:", task("a"), "extra: 1");
    const d = await expectError(src, "E_UNKNOWN_TOP_LEVEL_KEY", "extra", at(src, "extra:"));
    expect(d.hint).toMatch(/workflow/);
    const typo = doc("version: 2", "workflw:", "  name: wf", "  tasks:", task("a"));
    const t = await expectError(typo, "E_UNKNOWN_TOP_LEVEL_KEY", "workflw", at(typo, "workflw:"));
    expect(t.hint).toBe("did you mean `workflow`?");
  });

  it("rejects a version other than 2 and accepts 2 and '2'", async () => {
    const src = doc("version: 3", "workflow:", "  name: wf", "  tasks:", task("a"));
    const d = await expectError(src, "E_VERSION", "version", { line: 1, column: 10 });
    expect(d.message).toContain("3");
    await expectOk(doc("version: 2", "workflow:", "  name: wf", "  tasks:", task("a")));
    await expectOk(doc('version: "2"', "workflow:", "  name: wf", "  tasks:", task("a")));
  });
});

describe("names", () => {
  it("reports a missing workflow, task or group name", async () => {
    const wf = doc("workflow:", "  tasks:", task("a"));
    await expectError(wf, "E_MISSING_FIELD", "workflow.name", at(wf, "workflow:"));
    const t = doc("workflow:", "  name: wf", "  tasks:", "    - image: alpine", "      command: [echo]");
    await expectError(t, "E_MISSING_FIELD", "workflow.tasks[0].name", at(t, "image: alpine"));
    const g = groupsWf(["    - tasks:", ...gtask("a")]);
    await expectError(g, "E_MISSING_FIELD", "workflow.groups[0].name", at(g, "- tasks:", 0, 2));
  });

  it.each([
    ["starting with a digit", "1abc"],
    ["ending with a dash", "abc-"],
    ["ending with an underscore", "abc_"],
    ["containing a dot", "a.b"],
  ])("rejects names %s for the workflow, a task and a group", async (_what, bad) => {
    const wf = doc("workflow:", `  name: "${bad}"`, "  tasks:", task("a"));
    await expectError(wf, "E_BAD_NAME", "workflow.name", valueAt(wf, `name: "${bad}"`));
    const t = tasksWf(task("a"), task(`"${bad}"`));
    await expectError(t, "E_BAD_NAME", "workflow.tasks[1].name", valueAt(t, `name: "${bad}"`));
    const g = groupsWf(group("ok", [gtask("a")]), group(`"${bad}"`, [gtask("b")]));
    await expectError(g, "E_BAD_NAME", "workflow.groups[1].name", valueAt(g, `name: "${bad}"`));
  });

  it("rejects names longer than 64 characters and accepts 64", async () => {
    const wf = doc("workflow:", `  name: ${long(65)}`, "  tasks:", task("a"));
    const d = await expectError(wf, "E_BAD_NAME", "workflow.name", valueAt(wf, `name: ${long(65)}`));
    expect(d.message).toContain("65");
    const t = tasksWf(task(long(65)));
    await expectError(t, "E_BAD_NAME", "workflow.tasks[0].name", valueAt(t, `name: ${long(65)}`));
    const g = groupsWf(group(long(65), [gtask("a")]));
    await expectError(g, "E_BAD_NAME", "workflow.groups[0].name", valueAt(g, `name: ${long(65)}`));
    await expectOk(doc("workflow:", `  name: ${long(64)}`, "  groups:", group(long(64).toUpperCase(), [gtask(`x${long(63)}`)])));
  });

  it("treats names of tasks and groups as one namespace, ignoring case and `_` vs `-`", async () => {
    const t = tasksWf(task("Task_A"), task("task-a"));
    const d = await expectError(t, "E_DUPLICATE_NAME", "workflow.tasks[1].name", valueAt(t, "name: task-a"));
    expect(d.message).toContain("Task_A");
    const g = groupsWf(group("build", [gtask("a")]), group("other", [gtask("BUILD")]));
    await expectError(g, "E_DUPLICATE_NAME", "workflow.groups[1].tasks[0].name", valueAt(g, "name: BUILD"));
    const gg = groupsWf(group("prep_data", [gtask("a")]), group("Prep-Data", [gtask("b")]));
    await expectError(gg, "E_DUPLICATE_NAME", "workflow.groups[1].name", valueAt(gg, "name: Prep-Data"));
  });

  it("rejects the reserved name osmo-ctrl, in any spelling, for tasks and groups", async () => {
    const t = tasksWf(task("a"), task("osmo-ctrl"));
    await expectError(t, "E_RESERVED_NAME", "workflow.tasks[1].name", valueAt(t, "name: osmo-ctrl"));
    const g = groupsWf(group("OSMO_CTRL", [gtask("a")]));
    await expectError(g, "E_RESERVED_NAME", "workflow.groups[0].name", valueAt(g, "name: OSMO_CTRL"));
    await expectOk(tasksWf(task("osmo-ctrl2")));
  });
});

describe("tasks and groups", () => {
  it("rejects `tasks` and `groups` together", async () => {
    const src = doc("workflow:", "  name: wf", "  tasks:", task("a"), "  groups:", group("g", [gtask("b")]));
    await expectError(src, "E_TASKS_AND_GROUPS", "workflow.groups", at(src, "groups:"));
  });

  it("rejects a workflow with neither `tasks` nor `groups`, or an empty list", async () => {
    const none = doc("workflow:", "  name: wf", "  pool: p");
    await expectError(none, "E_NO_TASKS", "workflow", at(none, "name: wf"));
    const empty = doc("workflow:", "  name: wf", "  tasks: []");
    await expectError(empty, "E_NO_TASKS", "workflow.tasks", valueAt(empty, "tasks: []"));
  });

  it("rejects an empty group", async () => {
    const src = groupsWf(group("g", [gtask("a")]), ["    - name: h", "      tasks: []"]);
    await expectError(src, "E_EMPTY_GROUP", "workflow.groups[1].tasks", valueAt(src, "tasks: []"));
  });

  it("requires a lead in a group of more than one task, not in a group of one", async () => {
    const src = groupsWf(group("g", [gtask("a"), gtask("b")]));
    const d = await expectError(src, "E_NO_LEAD", "workflow.groups[0].tasks", at(src, "- name: a"));
    expect(d.hint).toContain("lead: true");
    await expectOk(groupsWf(group("solo", [gtask("a")])));
  });

  it("rejects several leads in one group, at the second lead", async () => {
    const src = groupsWf(group("g", [gtask("a", ["lead: true"]), gtask("b"), gtask("c", ["lead: true"])]));
    const d = await expectError(src, "E_MULTIPLE_LEADS", "workflow.groups[0].tasks[2].lead", valueAt(src, "lead: true", 1));
    expect(d.message).toMatch(/a, c/);
  });
});

describe("schema", () => {
  /** A tasks workflow with `lines` placed under `workflow:` before the tasks. */
  const wfWith = (...lines: string[]) => doc("workflow:", "  name: wf", ...lines, "  tasks:", task("a"));
  const checkpoint = ["checkpoint:", "  - path: /ckpt", "    url: s3://b/c", "    frequency: 10m", "    regx: a"];

  // [where, source, path of the unknown field (its last segment is the typo), what was meant]
  it.each([
    ["workflow", wfWith("  resorces: {}"), "workflow.resorces", "resources"],
    ["task", tasksWf(task("a", ["imgae: x"])), "workflow.tasks[0].imgae", "image"],
    ["group", groupsWf(group("g", [gtask("a")], ["barier: false"])), "workflow.groups[0].barier", "barrier"],
    ["resource", wfWith("  resources:", "    big:", "      cpus: 2"), "workflow.resources.big.cpus", "cpu"],
    ["file", tasksWf(task("a", ["files:", "  - path: /x", "    contnets: hi"])), "workflow.tasks[0].files[0].contnets", "contents"],
    ["input", tasksWf(task("a"), task("b", ["inputs:", "  - taks: a"])), "workflow.tasks[1].inputs[0].taks", "task"],
    ["checkpoint list entry", tasksWf(task("a", checkpoint)), "workflow.tasks[0].checkpoint[0].regx", "regex"],
    ["timeout", wfWith("  timeout:", "    exec_timout: 1h"), "workflow.timeout.exec_timout", "exec_timeout"],
  ])("rejects an unknown field in a %s with a did-you-mean hint", async (_where, src, path, meant) => {
    const typo = path.split(".").pop() as string;
    const d = await expectError(src, "E_UNKNOWN_FIELD", path, at(src, `${typo}:`));
    expect(d.hint).toBe(`did you mean \`${meant}\`?`);
  });

  const swap = (from: string, to: string) => tasksWf(task("a")).replace(from, to);
  // [what, source, path, the `key: value` whose value is wrong]
  it.each([
    ["image as a list", swap("image: alpine", "image: [alpine]"), "workflow.tasks[0].image", "image: [alpine]"],
    ["lead as a string", tasksWf(task("a", ['lead: "yes"'])), "workflow.tasks[0].lead", 'lead: "yes"'],
    ["command as a string", swap("command: [echo]", "command: echo hi"), "workflow.tasks[0].command", "command: echo hi"],
    ["environment as a list", tasksWf(task("a", ["environment: [A]"])), "workflow.tasks[0].environment", "environment: [A]"],
    ["tasks as a mapping", doc("workflow:", "  name: wf", "  tasks: {a: 1}"), "workflow.tasks", "tasks: {a: 1}"],
    ["barrier as a number", groupsWf(group("g", [gtask("a")], ["barrier: 1"])), "workflow.groups[0].barrier", "barrier: 1"],
  ])("rejects wrong types: %s", async (_what, src, path, keyValue) => {
    await expectError(src, "E_WRONG_TYPE", path, valueAt(src, keyValue));
  });

  it("rejects an empty command", async () => {
    const src = tasksWf(
      task("a"),
      task("b").map((l) => l.replace("[echo]", "[]")),
    );
    await expectError(src, "E_EMPTY_COMMAND", "workflow.tasks[1].command", valueAt(src, "command: []"));
  });

  it("coerces numbers and booleans in string fields to strings, as OSMO does", async () => {
    const src = tasksWf(task("a", ["args: [true, 1.5]", "environment:", "  CODE: 15", "  ON: false"])).replace("[echo]", "[echo, 15]");
    const t = (await expectOk(src)).spec?.workflow.tasks?.[0];
    expect(t?.command).toEqual(["echo", "15"]);
    expect(t?.command[1]).toBe("15");
    expect(t?.args).toEqual(["true", "1.5"]);
    expect(t?.environment).toEqual({ CODE: "15", ON: "false" });
  });
});

describe("files", () => {
  it("requires exactly one of `contents` and `localpath`", async () => {
    const src = tasksWf(task("a", ["files:", "  - path: /tmp/none", "  - path: /tmp/both", "    contents: x", "    localpath: y"]));
    const r = await load(src);
    expect(one(r, "E_FILE_SOURCE", "workflow.tasks[0].files[0]")).toMatchObject(at(src, "path: /tmp/none"));
    expect(one(r, "E_FILE_SOURCE", "workflow.tasks[0].files[1]")).toMatchObject(at(src, "path: /tmp/both"));
  });

  it("rejects duplicate paths, also after normalisation", async () => {
    const src = tasksWf(task("a", ["files:", "  - path: /tmp/a", "    contents: x", "  - path: /tmp//a", "    contents: y"]));
    const d = await expectError(src, "E_DUPLICATE_FILE_PATH", "workflow.tasks[0].files[1].path", valueAt(src, "path: /tmp//a"));
    expect(d.message).toContain("files[0]");
  });

  it("rejects paths under /osmo and accepts lookalikes", async () => {
    for (const bad of ["/osmo/data/x", "/osmo", "/tmp/../osmo/run"]) {
      const src = tasksWf(task("a", ["files:", `  - path: ${bad}`, "    contents: x"]));
      await expectError(src, "E_RESERVED_PATH", "workflow.tasks[0].files[0].path", valueAt(src, `path: ${bad}`));
    }
    await expectOk(tasksWf(task("a", ["files:", "  - path: /osmosis/x", "    contents: x"])));
  });

  it("reads a localpath relative to baseDir: a missing one is an error, an existing one passes", async () => {
    const dir = mkdtempSync(join(tmpdir(), "troupe-spec-"));
    try {
      mkdirSync(join(dir, "data"));
      writeFileSync(join(dir, "data", "in.txt"), "hello");
      const src = tasksWf(task("a", ["files:", "  - path: /tmp/in.txt", "    localpath: data/in.txt"]));
      await expectOk(src, { baseDir: dir });
      const elsewhere = await load(src, { baseDir: join(dir, "data") });
      expect(one(elsewhere, "E_LOCALPATH_NOT_FOUND", "workflow.tasks[0].files[0].localpath")).toMatchObject(
        valueAt(src, "localpath: data/in.txt"),
      );
      const missing = tasksWf(task("a", ["files:", "  - path: /tmp/x", "    localpath: nope.txt"]));
      await expectError(missing, "E_LOCALPATH_NOT_FOUND", "workflow.tasks[0].files[0].localpath", valueAt(missing, "localpath: nope.txt"), {
        baseDir: dir,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("inputs", () => {
  it("rejects an input from an unknown task, with a hint; accepts another workflow's task", async () => {
    const src = tasksWf(task("prepare"), task("train", ["inputs:", "  - task: prepair"]));
    const d = await expectError(src, "E_UNKNOWN_INPUT_TASK", "workflow.tasks[1].inputs[0].task", valueAt(src, "task: prepair"));
    expect(d.hint).toBe("did you mean `prepare`?");
    await expectOk(tasksWf(task("train", ["inputs:", "  - task: wf-3:prepare"])));
  });

  it("rejects an input from a task of the same group", async () => {
    const src = groupsWf(group("g", [gtask("a", ["lead: true"]), gtask("b", ["inputs:", "  - task: a"])]));
    await expectError(src, "E_INPUT_SAME_GROUP", "workflow.groups[0].tasks[1].inputs[0].task", valueAt(src, "task: a"));
  });

  it("reports a dependency cycle with its path, and accepts consumers listed before producers", async () => {
    const src = tasksWf(
      task("a", ["inputs:", "  - task: b"]),
      task("b", ["inputs:", "  - task: c"]),
      task("c", ["inputs:", "  - task: a"]),
    );
    const r = await load(src);
    expect(r.ok).toBe(false);
    const d = one(r, "E_DEPENDENCY_CYCLE");
    expect(d.path).toMatch(/^workflow\.tasks\[\d\]\.inputs$/);
    const index = Number(/\[(\d)\]/.exec(d.path)?.[1]);
    expect(d.line).toBe(at(src, "inputs:", index).line + 1);
    const cycle = /dependency cycle: (\w+) -> (\w+) -> (\w+) -> (\w+)/.exec(d.message);
    expect(cycle?.[1]).toBe(cycle?.[4]);
    expect(new Set(cycle?.slice(1, 4))).toEqual(new Set(["a", "b", "c"]));
    // Data flows c -> b -> a, whichever way round the message starts.
    expect(d.message).toMatch(/a -> c -> b -> a|c -> b -> a -> c|b -> a -> c -> b/);
    await expectOk(tasksWf(task("last", ["inputs:", "  - task: first"]), task("first")));
  });
});

describe("tokens", () => {
  const cmd =
    (...words: string[]) =>
    (lines: string[]) =>
      lines.map((l) => l.replace("[echo]", `[echo, ${words.join(", ")}]`));

  it("rejects {{host:X}} for an unknown task", async () => {
    const src = groupsWf(group("g", [cmd('"{{host:sever}}"')(gtask("client", ["lead: true"])), gtask("server")]));
    const d = await expectError(src, "E_UNKNOWN_HOST_TASK", "workflow.groups[0].tasks[0].command[1]", at(src, '"{{host:sever}}"'));
    expect(d.hint).toBe("did you mean `server`?");
  });

  it("rejects {{host:X}} for a task outside the group, accepts one inside it", async () => {
    const src = tasksWf(cmd('"{{host:server}}"')(task("client")), task("server"));
    await expectError(src, "E_HOST_OUTSIDE_GROUP", "workflow.tasks[0].command[1]", at(src, '"{{host:server}}"'));
    await expectOk(groupsWf(group("g", [cmd('"{{host:server}}"')(gtask("client", ["lead: true"])), gtask("server")])));
  });

  it("rejects {{input:N}} out of range and accepts it in range", async () => {
    const src = tasksWf(task("up"), cmd('"{{input:0}}"', '"{{input:1}}"')(task("down", ["inputs:", "  - task: up"])));
    const d = await expectError(src, "E_INPUT_INDEX", "workflow.tasks[1].command[2]", at(src, '"{{input:1}}"'));
    expect(d.message).toContain("1 input");
    const none = tasksWf(cmd('"{{input:0}}"')(task("a")));
    await expectError(none, "E_INPUT_INDEX", "workflow.tasks[0].command[1]", at(none, '"{{input:0}}"'));
  });

  it("rejects {{input:name}} not among the inputs and accepts one that is", async () => {
    const src = tasksWf(task("up"), task("other"), cmd('"{{input:up}}"', '"{{input:other}}"')(task("down", ["inputs:", "  - task: up"])));
    await expectError(src, "E_INPUT_NAME", "workflow.tasks[2].command[2]", at(src, '"{{input:other}}"'));
  });

  it("rejects any other {{...}} left after templating", async () => {
    const src = tasksWf(cmd('"{{foo:bar}}"')(task("a")));
    await expectError(src, "E_UNKNOWN_TOKEN", "workflow.tasks[0].command[1]", at(src, '"{{foo:bar}}"'));
    // A template expression that renders braces leaves them behind.
    const raw = tasksWf(task("a", [`args: ["{{ '{{ x }}' }}"]`]));
    await expectError(raw, "E_UNKNOWN_TOKEN", "workflow.tasks[0].args[0]", at(raw, `"{{ '`));
    const image = tasksWf(task("a")).replace("image: alpine", 'image: "{{output}}"');
    await expectError(image, "E_TOKEN_NOT_ALLOWED", "workflow.tasks[0].image", valueAt(image, 'image: "{{output}}"'));
  });
});

describe("resources", () => {
  const withResources = (tasks: string[][], ...resources: string[]) =>
    doc("workflow:", "  name: wf", "  resources:", ...resources.map((l) => `    ${l}`), "  tasks:", ...tasks);

  it("rejects an unknown `resource` name and accepts defined ones and `default`", async () => {
    const src = withResources([task("a", ["resource: gpus"]), task("b", ["resource: default"])], "gpu:", "  gpu: 1");
    const d = await expectError(src, "E_UNKNOWN_RESOURCE", "workflow.tasks[0].resource", valueAt(src, "resource: gpus"));
    expect(d.hint).toBe("did you mean `gpu`?");
    await expectOk(withResources([task("a", ["resource: gpu"]), task("b", ["resource: default"])], "gpu:", "  gpu: 1"));
    await expectOk(tasksWf(task("a", ["resource: default"])));
  });

  it("checks a numeric resource name (coerced to a string) like any other", async () => {
    const src = tasksWf(task("a", ["resource: 5"]));
    await expectError(src, "E_UNKNOWN_RESOURCE", "workflow.tasks[0].resource", valueAt(src, "resource: 5"));
  });

  it.each([
    ["cpu", "cpu: 1.5", "E_BAD_COUNT"],
    ["cpu", "cpu: two", "E_BAD_COUNT"],
    ["gpu", "gpu: -1", "E_BAD_COUNT"],
    ["memory", "memory: 1GB", "E_BAD_SIZE"],
    ["memory", "memory: lots", "E_BAD_SIZE"],
    ["memory", "memory: 1.5", "E_BAD_SIZE"],
    ["storage", "storage: 10Xi", "E_BAD_SIZE"],
    ["storage", "storage: -5Gi", "E_BAD_SIZE"],
  ])("rejects a malformed %s value (%s)", async (field, line, code) => {
    const src = withResources([task("a", ["resource: r"])], "r:", `  ${line}`);
    await expectError(src, code, `workflow.resources.r.${field}`, valueAt(src, line));
  });

  it("accepts sizes as 1Gi, 512Mi and plain byte counts, and counts as numbers or numeric strings", async () => {
    const src = withResources(
      [task("a", ["resource: r"])],
      "r:",
      '  cpu: "4"',
      "  gpu: 0",
      "  memory: 1Gi",
      "  storage: 512Mi",
      "s:",
      "  memory: 1073741824",
    );
    const r = await expectOk(src);
    expect(r.spec?.workflow.resources?.s?.memory).toBe(1073741824);
    expect(parseSize("1Gi")).toEqual({ ok: true, value: 1073741824 });
    expect(parseSize("512Mi")).toEqual({ ok: true, value: 512 * 1024 * 1024 });
    expect(parseSize(1073741824)).toEqual({ ok: true, value: 1073741824 });
  });
});

describe("OSMO's datasets", () => {
  it.each(["inputs", "outputs"])("a `dataset:` in %s is one error that says to use `url:`", async (where) => {
    const src = tasksWf(task("a", [`${where}:`, "  - dataset:", "      name: my_dataset"]));
    const d = await expectError(src, "E_UNKNOWN_FIELD", `workflow.tasks[0].${where}[0].dataset`, at(src, "dataset:"));
    expect(d.hint).toContain("`url: s3://BUCKET/PATH`");
    const r = await load(src);
    expect(r.diagnostics.filter((x) => x.severity === "error")).toHaveLength(1);
  });
});

describe("exit actions", () => {
  const withActions = (...lines: string[]) => tasksWf(task("a", ["exitActions:", ...lines.map((l) => `  ${l}`)]));

  it("rejects an unknown action with a hint", async () => {
    const src = withActions('RESCHEDUEL: "1"');
    const d = await expectError(src, "E_UNKNOWN_FIELD", "workflow.tasks[0].exitActions.RESCHEDUEL", at(src, "RESCHEDUEL"));
    expect(d.hint).toBe("did you mean `RESCHEDULE`?");
    const retry = withActions('RETRY: "1"');
    await expectError(retry, "E_UNKNOWN_FIELD", "workflow.tasks[0].exitActions.RETRY", at(retry, "RETRY"));
  });

  it.each(['"1-"', '"a"', '"10-1"', '"256"', '"1,,2"', '""'])("rejects the malformed range %s", async (value) => {
    const src = withActions(`FAIL: ${value}`);
    await expectError(src, "E_BAD_EXIT_RANGE", "workflow.tasks[0].exitActions.FAIL", valueAt(src, `FAIL: ${value}`));
  });

  it("rejects overlapping ranges, across actions and within one", async () => {
    const src = withActions('COMPLETE: "0,20-30"', 'FAIL: "1-10,25"');
    const d = await expectError(src, "E_OVERLAPPING_EXIT_RANGES", "workflow.tasks[0].exitActions.FAIL", valueAt(src, 'FAIL: "1-10,25"'));
    expect(d.message).toContain("20-30");
    const self = withActions('FAIL: "1-5,3"');
    await expectError(self, "E_OVERLAPPING_EXIT_RANGES", "workflow.tasks[0].exitActions.FAIL", valueAt(self, 'FAIL: "1-5,3"'));
    await expectOk(withActions('COMPLETE: "0,2"', "FAIL: 1", 'RESCHEDULE: "3-10,16"'), { maxRetries: 2 });
  });
});

describe("timeouts and labels", () => {
  const withTimeout = (line: string) => doc("workflow:", "  name: wf", "  timeout:", `    ${line}`, "  tasks:", task("a"));

  it.each(["exec_timeout: 1h30m", "exec_timeout: 30 minutes", "queue_timeout: 1.5h", "queue_timeout: 10w"])(
    "rejects the malformed timeout `%s`",
    async (line) => {
      const src = withTimeout(line);
      await expectError(src, "E_BAD_DURATION", `workflow.timeout.${line.split(":")[0]}`, valueAt(src, line));
    },
  );

  it("accepts well-formed timeouts", async () => {
    for (const line of ["exec_timeout: 30s", "exec_timeout: 30m", "queue_timeout: 2h", "queue_timeout: 1d"])
      await expectOk(withTimeout(line));
  });

  const withLabels = (labels: string[]) =>
    doc("workflow:", "  name: wf", "  labels:", ...labels.map((l) => `    ${l}`), "  tasks:", task("a"));
  const labelLines = (n: number) => Array.from({ length: n }, (_, i) => `l${i}: v${i}`);

  it("rejects more than 16 labels and accepts 16", async () => {
    const src = withLabels(labelLines(17));
    const d = await expectError(src, "E_TOO_MANY_LABELS", "workflow.labels", at(src, "l0: v0"));
    expect(d.message).toContain("17");
    await expectOk(withLabels(labelLines(16)));
  });

  it("rejects an invalid label value", async () => {
    const src = withLabels(["team: ok", 'owner: "has space"']);
    await expectError(src, "E_BAD_LABEL", "workflow.labels.owner", valueAt(src, 'owner: "has space"'));
    await expectOk(withLabels(["example.com/team: robotics", "tier: a.b_c-1"]));
  });

  it("rejects an invalid label key with E_BAD_LABEL at the key", async () => {
    const src = withLabels(["team: ok", "-bad: x"]);
    await expectError(src, "E_BAD_LABEL", 'workflow.labels["-bad"]', at(src, "-bad"));
  });
});

describe("warnings", () => {
  const src = tasksWf(task("a", ["exitActions:", '  RESCHEDULE: "1-10"']));

  it("warns about RESCHEDULE when the retry limit is 0, separately from errors", async () => {
    const r = await load(src, { maxRetries: 0 });
    expect(r.ok).toBe(true);
    expect(r.spec).toBeDefined();
    expect(errors(r)).toEqual([]);
    expect(one(r, "W_RESCHEDULE_WITHOUT_RETRIES", "workflow.tasks[0].exitActions.RESCHEDULE")).toMatchObject({
      severity: "warning",
      ...valueAt(src, 'RESCHEDULE: "1-10"'),
    });
    expect((await load(src)).diagnostics.map((d) => d.code)).toEqual(["W_RESCHEDULE_WITHOUT_RETRIES"]);
  });

  it("does not warn when retries are allowed", async () => {
    expect((await load(src, { maxRetries: 1 })).diagnostics).toEqual([]);
  });
});

describe("every problem at once", () => {
  it("reports all the problems of one file, sorted by place", async () => {
    const src = doc(
      "version: 3",
      "workflow:",
      "  name: wf",
      "  colour: red",
      "  groups:",
      group("g", [
        gtask("a", ["lead: true", "imgae: x", "resource: nope", "inputs:", "  - task: ghost"]),
        gtask("b", ["lead: true", "files:", "  - path: /osmo/x", "    contents: y"]),
      ]),
      group("G", [gtask("c", ['exitActions: {FAIL: "1-", COMPLETE: 0}'])]),
      ["    - name: empty", "      tasks: []"],
    );
    const r = await load(src);
    expect(r.ok).toBe(false);
    const codes = r.diagnostics.map((d) => d.code);
    const expected = "E_VERSION E_UNKNOWN_FIELD E_MULTIPLE_LEADS E_UNKNOWN_RESOURCE E_UNKNOWN_INPUT_TASK E_RESERVED_PATH E_DUPLICATE_NAME";
    for (const code of [...expected.split(" "), "E_BAD_EXIT_RANGE", "E_EMPTY_GROUP"]) {
      expect(codes).toContain(code);
    }
    expect(codes.filter((c) => c === "E_UNKNOWN_FIELD")).toHaveLength(2);
    const lines = r.diagnostics.map((d) => d.line);
    expect(lines).toEqual([...lines].sort((x, y) => x - y));
    expect(lines.every((l) => l >= 1)).toBe(true);
  });
});

/**
 * Where OSMO's own workflow files (its cookbook, test workflows and docs)
 * showed troupe's validator judging differently from OSMO. Each case is a
 * small file written here in the way OSMO's files do it; scripts/osmo-corpus.mjs
 * measures the agreement over OSMO's real files.
 */
import { describe, expect, it } from "vitest";
import { compileWorkflow } from "../../src/plan/index.js";
import { loadWorkflowSpec, type Diagnostic, type LoadOptions, type LoadResult } from "../../src/spec/index.js";

const doc = (...lines: string[]): string => lines.join("\n") + "\n";
const load = (src: string, options: LoadOptions = {}) => loadWorkflowSpec(src, options);
const errors = (r: LoadResult) => r.diagnostics.filter((d) => d.severity === "error");

async function expectValid(src: string, options: LoadOptions = {}): Promise<LoadResult> {
  const r = await load(src, options);
  expect(errors(r), JSON.stringify(r.diagnostics, null, 1)).toEqual([]);
  expect(r.ok).toBe(true);
  return r;
}

/** The one error with `code`; fails when there is not exactly one. */
async function expectOneError(src: string, code: string, options: LoadOptions = {}): Promise<Diagnostic> {
  const r = await load(src, options);
  expect(r.ok).toBe(false);
  const hits = errors(r).filter((d) => d.code === code);
  expect(hits, JSON.stringify(r.diagnostics, null, 1)).toHaveLength(1);
  return hits[0] as Diagnostic;
}

/** 1-based line and column of the first `needle` in `src`. */
function at(src: string, needle: string): { line: number; column: number } {
  const index = src.indexOf(needle);
  if (index < 0) throw new Error(`${needle} not in source`);
  const before = src.slice(0, index);
  return { line: before.split("\n").length, column: index - before.lastIndexOf("\n") };
}

const oneTask = (...extra: string[]) =>
  doc("workflow:", "  name: wf", "  tasks:", "  - name: a", "    image: alpine", "    command: [sh, -c, 'exit 0']", ...extra);

describe("an empty `default-values:`", () => {
  it("is accepted, as OSMO accepts it (null: no variables)", async () => {
    await expectValid(doc("workflow:", "  name: wf", "  tasks:", "  - name: a", "    image: alpine", "    command: [true]", "", "default-values:"));
  });

  it("still gives a template no variables", async () => {
    const src = doc("workflow:", "  name: wf", "  tasks:", "  - name: a", "    image: alpine", "    command: [echo, '{{ n }}']", "default-values:");
    const d = await expectOneError(src, "E_TEMPLATE_UNDEFINED");
    expect(d.line).toBe(6);
  });
});

describe("exitActions keys", () => {
  it("are read in any case, as OSMO upper-cases them", async () => {
    const r = await expectValid(oneTask("    exitActions:", "      complete: 0", "      Fail: 1-10", "      reschedule: 11"));
    const task = r.spec?.workflow.tasks?.[0];
    expect(task?.exitActions).toEqual({ COMPLETE: 0, FAIL: "1-10", RESCHEDULE: 11 });
    const plan = compileWorkflow(r.spec!);
    expect(plan.groups[0]?.tasks[0]?.exitActions.map((rule) => rule.action)).toEqual(["COMPLETE", "FAIL", "RESCHEDULE"]);
  });

  it("refuse an action that is none of the three, at its key, with the one meant", async () => {
    const src = oneTask("    exitActions:", "      complet: 0");
    const d = await expectOneError(src, "E_UNKNOWN_FIELD");
    expect(d.message).toContain("unknown exit action `complet`");
    expect({ line: d.line, column: d.column }).toEqual(at(src, "complet:"));
    expect(d.hint).toContain("COMPLETE");
  });

  it("refuse the same action twice in different cases", async () => {
    const src = oneTask("    exitActions:", "      COMPLETE: 0", "      complete: 1");
    const d = await expectOneError(src, "E_DUPLICATE_EXIT_ACTION");
    expect(d.line).toBe(at(src, "complete: 1").line);
  });

  it("in lower case still have their ranges checked against each other", async () => {
    const src = oneTask("    exitActions:", "      complete: 0-5", "      fail: 3");
    const d = await expectOneError(src, "E_OVERLAPPING_EXIT_RANGES");
    expect(d.line).toBe(at(src, "fail: 3").line);
  });
});

describe("labels and volume mounts, as OSMO checks them", () => {
  it("refuses an empty label value, where it is", async () => {
    const src = doc("workflow:", "  name: wf", "  labels:", "    team: ''", "  tasks:", "  - name: a", "    image: alpine", "    command: [true]");
    const d = await expectOneError(src, "E_BAD_LABEL");
    expect(d.message).toContain("must not be empty");
    expect(d.line).toBe(4);
  });

  it("refuses a volume mount of three parts, and one with an empty destination", async () => {
    const three = oneTask("    volumeMounts: ['/opt:/home/foo:/bad_mount']");
    const d = await expectOneError(three, "E_BAD_VOLUME_MOUNT");
    expect(d.message).toContain("3 parts");
    expect(d.line).toBe(7);
    await expectOneError(oneTask("    volumeMounts: ['/opt:']"), "E_BAD_VOLUME_MOUNT");
  });

  it("accepts SRC and SRC:DEST", async () => {
    await expectValid(oneTask("    volumeMounts: [/data, '/opt:/mnt/opt']"));
  });
});

describe("{% raw %} blocks", () => {
  // As OSMO's deepspeed cookbook writes a hostfile: tokens built around a loop variable.
  const hostfile = doc(
    "default-values:",
    "  n: 3",
    "workflow:",
    "  name: wf",
    "  groups:",
    "  - name: g",
    "    tasks:",
    "{% for i in range(n) %}",
    "    - name: worker_{{ i }}",
    "      image: alpine",
    "      command: [sh, -c, 'cat /hosts']",
    "{% endfor %}",
    "    - name: master",
    "      lead: true",
    "      image: alpine",
    "      command: [sh, /hosts]",
    "      files:",
    "      - path: /hosts",
    "        contents: |",
    "          {% for i in range(1, n) %}",
    "          {% raw %}{{host:worker_{% endraw %}{{ i }}{% raw %}}}{% endraw %} slots=8",
    "          {% endfor %}",
  );

  it("output their text as written, so tokens can be built with them", async () => {
    const r = await expectValid(hostfile);
    const master = r.spec?.workflow.groups?.[0]?.tasks.find((t) => t.name === "master");
    expect(master?.files?.[0]?.contents).toMatch(/\{\{host:worker_1\}\} slots=8\n\s*\{\{host:worker_2\}\} slots=8/);
  });

  it("keep Jinja syntax inside them literal, with their whitespace control", async () => {
    const src = oneTask("    environment:", "      A: \"x {%- raw -%}  {{ undefined_here {% if %} {# #}  {%- endraw -%} y\"");
    const r = await expectValid(src);
    expect(r.spec?.workflow.tasks?.[0]?.environment?.A).toBe("x{{ undefined_here {% if %} {# #}y");
  });

  it("leave later errors at their own line and column", async () => {
    const src = oneTask("    environment:", "      A: \"{% raw %}{{ a }}\\n{{ b }}{% endraw %} {{ missing }}\"");
    const d = await expectOneError(src, "E_TEMPLATE_UNDEFINED");
    expect({ line: d.line, column: d.column }).toEqual(at(src, "missing"));
  });
});

describe("templates as strict as OSMO's sandboxed, strict-undefined Jinja", () => {
  it("refuse `''.__class__` (rendered as empty text before), at its place", async () => {
    const src = oneTask("    args: [\"A string has the class {{ ''.__class__ }}\"]");
    const d = await expectOneError(src, "E_TEMPLATE_UNSAFE");
    expect(d.message).toContain("__class__");
    expect({ line: d.line, column: d.column }).toEqual(at(src, ".__class__"));
    const item = oneTask("    args: [\"{{ cfg['__init__'] }}\"]", "default-values:", "  cfg: {a: 1}");
    expect((await expectOneError(item, "E_TEMPLATE_UNSAFE")).message).toContain("__init__");
  });

  it("refuse an attribute the value does not have, at its line", async () => {
    const src = doc(
      "default-values:",
      "  cfg: {epochs: 3}",
      "workflow:",
      "  name: wf",
      "  tasks:",
      "  - name: a",
      "    image: alpine",
      "    command: [train, '{{ cfg.epochs }}', '{{ cfg.missing }}']",
    );
    const d = await expectOneError(src, "E_TEMPLATE_UNDEFINED");
    expect(d.message).toContain("`cfg` has no attribute `missing`");
    expect({ line: d.line, column: d.column }).toEqual(at(src, "cfg.missing"));
    const item = await expectOneError(src.replace("cfg.missing", "cfg.epochs_list[3]").replace("{epochs: 3}", "{epochs: 3, epochs_list: [1]}"), "E_TEMPLATE_UNDEFINED");
    expect(item.message).toContain("has no item 3");
  });

  it("still let a template ask about what may be missing", async () => {
    const src = doc(
      "default-values:",
      "  cfg: {}",
      "workflow:",
      "  name: wf",
      "  tasks:",
      "  - name: a",
      "    image: alpine",
      "    command: [train, '{{ cfg.epochs | default(3) }}', '{{ cfg.lr is defined }}', '{{ cfg.get(\"x\", 1) }}']",
    );
    const r = await expectValid(src);
    expect(r.spec?.workflow.tasks?.[0]?.command).toEqual(["train", "3", "false", "1"]);
  });
});

describe("a --set value the template never uses", () => {
  const fanout = doc(
    "default-values:",
    "  seeds: 2",
    "workflow:",
    "  name: wf",
    "  tasks:",
    "{% for s in range(seeds) %}",
    "  - name: t{{ s }}",
    "    image: alpine",
    "    command: [echo, '{{ s }}']",
    "{% endfor %}",
  );

  it("is a warning naming it, with the variable meant", async () => {
    const r = await expectValid(fanout, { variables: { set: { seed: "5" } } });
    const warning = r.diagnostics.find((d) => d.code === "W_UNUSED_VARIABLE");
    expect(warning?.message).toContain("--set seed=");
    expect(warning?.hint).toBe("did you mean `seeds`?");
  });

  it("is not reported for variables the template uses, even in a branch not taken", async () => {
    const branchy = fanout.replace("    command: [echo, '{{ s }}']", "    command: [echo, '{% if false %}{{ extra }}{% endif %}{{ s }}']");
    const r = await expectValid(branchy, { variables: { set: { seeds: "3", extra: "x" }, setString: {} } });
    expect(r.diagnostics).toEqual([]);
    expect(r.spec?.workflow.tasks).toHaveLength(3);
  });

  it("is reported for a file that is no template, and for --set-string", async () => {
    const r = await expectValid(oneTask(), { variables: { setString: { seeds: "3" } } });
    expect(r.diagnostics.map((d) => [d.code, d.message])).toEqual([
      ["W_UNUSED_VARIABLE", "--set-string seeds=…: the file uses no template variables, so it has no effect"],
    ]);
  });
});

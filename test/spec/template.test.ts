import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DEFAULT_RENDER_LIMITS, loadWorkflowSpec, type Diagnostic, type LoadOptions, type LoadResult } from "../../src/spec/index.js";
import { renderJinja } from "../../src/spec/template/render.js";
import { timed } from "./timing.js";

// ---- helpers ----

type Lines = string | Lines[];
const flatten = (lines: Lines[]): string[] => lines.flatMap((l) => (typeof l === "string" ? [l] : flatten(l)));
const doc = (...lines: Lines[]): string => flatten(lines).join("\n") + "\n";
const head = ["workflow:", "  name: wf", "  tasks:"];
/** A task whose command is `[echo, <words>]`, at the `workflow.tasks` indentation. */
const task = (name: string, words: string[] = [], extra: string[] = []) => [
  `    - name: ${name}`,
  "      image: alpine",
  `      command: [echo${words.map((w) => `, ${w}`).join("")}]`,
  ...extra.map((l) => `      ${l}`),
];
/** A one-task workflow whose command is `[echo, <expr>]`, the expression in a block scalar so any quotes work. */
const probeDoc = (expr: string) =>
  doc(head, "    - name: a", "      image: alpine", "      command:", "        - echo", "        - |-", `          ${expr}`);

/** 1-based line and column of the `nth` occurrence of `needle`. */
function at(src: string, needle: string, nth = 0): { line: number; column: number } {
  let index = -1;
  for (let i = 0; i <= nth; i++) {
    index = src.indexOf(needle, index + 1);
    if (index < 0) throw new Error(`${JSON.stringify(needle)} #${nth} not in source`);
  }
  const before = src.slice(0, index);
  return { line: before.split("\n").length, column: index - before.lastIndexOf("\n") };
}

const load = (src: string, options: LoadOptions = {}) => loadWorkflowSpec(src, options);

function one(r: LoadResult, code: string): Diagnostic {
  const hits = r.diagnostics.filter((d) => d.code === code);
  expect(hits, `${code} in ${JSON.stringify(r.diagnostics, null, 1)}`).toHaveLength(1);
  return hits[0] as Diagnostic;
}

async function ok(src: string, options: LoadOptions = {}) {
  const r = await load(src, options);
  expect(
    r.diagnostics.filter((d) => d.severity === "error"),
    JSON.stringify(r.diagnostics),
  ).toEqual([]);
  expect(r.ok).toBe(true);
  const tasks = r.spec?.workflow.tasks;
  expect(tasks).toBeDefined();
  return tasks ?? [];
}

// ---- variables ----

describe("variables", () => {
  const src = doc(
    "default-values:",
    "  img: busybox",
    "  n: 2",
    "  tag: v1",
    head,
    task("a", ['"{{ n + 1 }}"', '"{{ tag }}"']).map((l) => l.replace("alpine", "{{ img }}")),
  );

  it("takes variables from default-values", async () => {
    const [t] = await ok(src);
    expect(t?.image).toBe("busybox");
    expect(t?.command).toEqual(["echo", "3", "v1"]);
  });

  it("--set overrides defaults and turns numbers into numbers", async () => {
    const [t] = await ok(src, { variables: { set: { n: "3", tag: "007" } } });
    expect(t?.command).toEqual(["echo", "4", "7"]);
    const [f] = await ok(src, { variables: { set: { n: "2.5" } } });
    expect(f?.command[1]).toBe("3.5");
  });

  it("--set-string keeps the value a string", async () => {
    const [t] = await ok(src, { variables: { setString: { tag: "007" } } });
    expect(t?.command[2]).toBe("007");
    const typed = doc(head, task("a", ['"{{ v is string }}"', '"{{ v is number }}"']));
    expect((await ok(typed, { variables: { setString: { v: "3" } } }))[0]?.command).toEqual(["echo", "true", "false"]);
    expect((await ok(typed, { variables: { set: { v: "3" } } }))[0]?.command).toEqual(["echo", "false", "true"]);
  });

  it("rejects a --set name that is not a variable name", async () => {
    const r = await load(src, { variables: { set: { "bad-name": "1" } } });
    expect(r.ok).toBe(false);
    expect(one(r, "E_BAD_VARIABLE").message).toContain("bad-name");
  });
});

// ---- control flow ----

describe("loops and conditions", () => {
  const src = doc(
    "default-values:",
    "  shards: 3",
    "  with_eval: true",
    head,
    "{% for i in range(shards) %}",
    task("shard-{{ i }}", ['"--shard={{ i }}"']),
    "{% endfor %}",
    "{% if with_eval %}",
    task("eval", [], ["inputs:", "{% for i in range(shards) %}", "  - task: shard-{{ i }}", "{% endfor %}"]),
    "{% endif %}",
  );

  it("generates tasks with for loops and if blocks", async () => {
    const tasks = await ok(src);
    expect(tasks.map((t) => t.name)).toEqual(["shard-0", "shard-1", "shard-2", "eval"]);
    expect(tasks[2]?.command).toEqual(["echo", "--shard=2"]);
    expect(tasks[3]?.inputs).toEqual([{ task: "shard-0" }, { task: "shard-1" }, { task: "shard-2" }]);
  });

  it("follows --set values through loops and conditions", async () => {
    const tasks = await ok(src, { variables: { set: { shards: "5", with_eval: "0" } } });
    expect(tasks.map((t) => t.name)).toEqual(["shard-0", "shard-1", "shard-2", "shard-3", "shard-4"]);
  });
});

// ---- errors ----

describe("template errors", () => {
  it("reports an undefined variable by name, at its line and column", async () => {
    const src = doc(head, task("a"), task("b", ['"{{ undefined_thing }}"']));
    const r = await load(src);
    expect(r.ok).toBe(false);
    const d = one(r, "E_TEMPLATE_UNDEFINED");
    expect(d.message).toContain("undefined_thing");
    expect(d).toMatchObject(at(src, "undefined_thing"));
    expect(d.hint).toContain("--set undefined_thing=");
  });

  it("reports an undefined variable at its unguarded use, not at an earlier guarded one", async () => {
    const src = doc(head, task("a", [`"{{ img | default('alpine') }}"`]), task("b", ['"{{ img }}"']));
    const d = one(await load(src), "E_TEMPLATE_UNDEFINED");
    expect(d.message).toContain("img");
    expect(d).toMatchObject(at(src, "img }}"));
  });

  it("hints at the token when `{{ output }}` is written with spaces", async () => {
    const src = doc(head, task("a", ['"{{ output }}"']));
    const d = one(await load(src), "E_TEMPLATE_UNDEFINED");
    expect(d.line).toBe(at(src, "{{ output }}").line);
    expect(d.hint).toContain("{{output}}");
  });

  it("does not fail on `is defined` or `| default`", async () => {
    const src = doc(
      head,
      "{% if extra is defined %}",
      task("extra"),
      "{% endif %}",
      task("a", [`"{{ x | default('y') }}"`, '"{{ x is defined }}"', '"{{ y is undefined }}"']),
    );
    const tasks = await ok(src);
    expect(tasks.map((t) => t.name)).toEqual(["a"]);
    expect(tasks[0]?.command).toEqual(["echo", "y", "false", "true"]);
    expect((await ok(src, { variables: { set: { extra: "1" } } })).map((t) => t.name)).toEqual(["extra", "a"]);
  });

  it("accepts `d`, Jinja's alias of `default`, on an undefined variable", async () => {
    const [t] = await ok(doc(head, task("a", [`"{{ z | d('w') }}"`])));
    expect(t?.command).toEqual(["echo", "w"]);
  });

  it("reports a syntax error in an expression at its line", async () => {
    const src = doc(head, task("a"), task("b", ['"{{ 1 + }}"']));
    const d = one(await load(src), "E_TEMPLATE_SYNTAX");
    expect(d).toMatchObject(at(src, "{{ 1 + }}"));
  });

  it("reports an unclosed block at its opening line", async () => {
    const src = doc(head, task("a"), "{% for i in range(2) %}", task("b{{ i }}"));
    const r = await load(src);
    expect(r.ok).toBe(false);
    expect(one(r, "E_TEMPLATE_SYNTAX").line).toBe(at(src, "{% for").line);
  });

  it("hints that special tokens take no inner spaces", async () => {
    const src = doc(head, task("a", ['"{{ host:b }}"']));
    const d = one(await load(src), "E_TEMPLATE_SYNTAX");
    expect(d.line).toBe(at(src, "{{ host:b }}").line);
    expect(d.hint).toMatch(/without inner spaces/);
  });
});

// ---- special tokens ----

describe("special tokens", () => {
  it("pass through templating untouched", async () => {
    const tokens = ["{{output}}", "{{input:0}}", "{{input:up}}", "{{host:server}}", "{{workflow_id}}"];
    const src = doc(
      "default-values:",
      "  wf: tokens",
      "workflow:",
      '  name: "{{ wf }}"',
      "  groups:",
      "    - name: first",
      "      tasks:",
      "        - name: up",
      "          image: alpine",
      '          command: ["{{ wf }}"]',
      "    - name: second",
      "      tasks:",
      "        - name: client",
      "          lead: true",
      "          image: alpine",
      `          command: [${tokens.map((t) => `"${t}"`).join(", ")}]`,
      `          args: ["{{output}}/x-{{ wf }}"]`,
      "          environment:",
      '            RUN: "{{workflow_id}}"',
      "          inputs:",
      "            - task: up",
      "        - name: server",
      "          image: alpine",
      "          command: [serve]",
    );
    const r = await load(src);
    expect(r.diagnostics).toEqual([]);
    const client = r.spec?.workflow.groups?.[1]?.tasks[0];
    expect(r.spec?.workflow.name).toBe("tokens");
    expect(client?.command).toEqual(tokens);
    expect(client?.args).toEqual(["{{output}}/x-tokens"]);
    expect(client?.environment).toEqual({ RUN: "{{workflow_id}}" });
  });
});

// ---- sandbox ----

describe("sandbox", () => {
  const JS_SOURCE = /=>|function|native code|\[object|class\s|return\s|\bthis\b/;
  const vars: LoadOptions = { variables: { setString: { x: "abc" } } };

  /** The rendered value of `expr`, or the template error it caused. */
  async function render(expr: string): Promise<{ value?: string; code?: string }> {
    const r = await load(probeDoc(expr), vars);
    if (r.ok) return { value: r.spec?.workflow.tasks?.[0]?.command[1] ?? "" };
    expect(r.diagnostics[0]?.code).toMatch(/^E_TEMPLATE_/);
    return { code: r.diagnostics[0]?.code };
  }

  it.each([
    "{{ ''.constructor }}",
    "{{ x.constructor }}",
    "{{ x.constructor.constructor }}",
    "{{ range.constructor }}",
    "{{ x.__proto__ }}",
  ])("does not expose JavaScript objects: %s", async (expr) => {
    const { value } = await render(expr);
    if (value !== undefined) expect(value).not.toMatch(JS_SOURCE);
  });

  it.each(["{{ range }}", "{{ x.upper }}", "{{ namespace }}"])("does not render the JavaScript source of a built-in: %s", async (expr) => {
    // Checked on the renderer itself: the multi-line source would otherwise surface as a YAML error.
    const result = await renderJinja(expr, { x: "abc" });
    if (result.ok) expect(result.output).not.toMatch(JS_SOURCE);
  });

  it("cannot run JavaScript through constructor chains", async () => {
    const dir = mkdtempSync(join(tmpdir(), "troupe-sandbox-"));
    const marker = join(dir, "escaped");
    const write = `"process.getBuiltinModule('fs').writeFileSync('${marker}', 'x'); return process.pid"`;
    try {
      for (const expr of [
        `{{ x.constructor.constructor(${write})() }}`,
        `{{ ''.constructor.constructor(${write})() }}`,
        `{{ range.constructor(${write})() }}`,
        `{% set f = x.constructor.constructor %}{{ f(${write})() }}`,
        `{{ x.upper.constructor(${write})() }}`,
      ]) {
        const { value } = await render(expr);
        if (value !== undefined) expect(value).not.toContain(String(process.pid));
        expect(existsSync(marker)).toBe(false);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---- line mapping ----

describe("line mapping", () => {
  const loop = ["default-values:", "  n: 3", head, "{% for i in range(n) %}", task("t{{ i }}", ['"{{ i }}"']), "{% endfor %}"];

  it("reports a YAML error after a rendered loop at its line in the original file", async () => {
    const src = doc(loop, "    - name: last", "      image: alpine", "     command: [echo]");
    const d = one(await load(src), "E_YAML_SYNTAX");
    expect(d.line).toBe(at(src, "     command: [echo]").line);
  });

  it("reports schema and rule errors after and inside a loop at their original lines", async () => {
    const src = doc(
      "default-values:",
      "  n: 3",
      head,
      "{% for i in range(n) %}",
      task("t{{ i }}", ['"{{ i }}"']),
      "{% if i == 1 %}",
      "      imgae: x",
      "{% endif %}",
      "{% endfor %}",
      task("last", ['"{{host:t0}}"'], ["bogus: 1"]),
    );
    const r = await load(src);
    const typo = r.diagnostics.find((d) => d.path === "workflow.tasks[1].imgae");
    expect(typo).toMatchObject({ code: "E_UNKNOWN_FIELD", ...at(src, "imgae") });
    const bogus = r.diagnostics.find((d) => d.path === "workflow.tasks[3].bogus");
    expect(bogus).toMatchObject({ code: "E_UNKNOWN_FIELD", ...at(src, "bogus") });
    const host = r.diagnostics.find((d) => d.code === "E_HOST_OUTSIDE_GROUP");
    expect(host).toMatchObject({ path: "workflow.tasks[3].command[1]", ...at(src, '"{{host:t0}}"') });
  });
});

// ---- bounds (last: a timed-out render replaces the worker) ----

describe("bounds", () => {
  it("bounds the rendered size", async () => {
    const src = doc(head, "{% for i in range(1000) %}", task("t{{ i }}"), "{% endfor %}");
    const r = await load(src, { renderLimits: { timeoutMs: 5000, maxOutputChars: 10_000 } });
    expect(r.ok).toBe(false);
    one(r, "E_TEMPLATE_TOO_LARGE");
    expect(await ok(src)).toHaveLength(1000);
  });

  const loops = ["a", "b", "c", "d"].map((v) => `{% for ${v} in range(10000) %}`).join("");
  const endless = doc(head, loops, task("t{{ a }}-{{ b }}-{{ c }}-{{ d }}"), "{% endfor %}{% endfor %}{% endfor %}{% endfor %}");

  it("stops four nested range(10000) loops with E_TEMPLATE_TIMEOUT, quickly", async () => {
    const { value: r, ms } = await timed(() => load(endless));
    expect(r.ok).toBe(false);
    expect(one(r, "E_TEMPLATE_TIMEOUT").line).toBe(at(endless, "{% for").line);
    // Stopped by its timeout: after it (counted from the render's start, a moment after ours), and not the 10^16
    // iterations later; a few times the timeout leaves room for a worker's start on a busy machine.
    const { timeoutMs } = DEFAULT_RENDER_LIMITS;
    expect(ms).toBeGreaterThanOrEqual(timeoutMs);
    expect(ms).toBeLessThan(5 * timeoutMs);
  });

  it("renders the next file normally right after a timeout", async () => {
    expect((await load(endless)).diagnostics.map((d) => d.code)).toEqual(["E_TEMPLATE_TIMEOUT"]);
    expect((await ok(doc(head, task("after{{ 1 }}"))))[0]?.name).toBe("after1");
  });
});

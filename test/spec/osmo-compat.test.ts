/**
 * Where OSMO's own workflow files (its cookbook, test workflows and docs)
 * showed troupe's validator judging differently from OSMO. Each case is a
 * small file written here in the way OSMO's files do it; scripts/osmo-corpus.mjs
 * measures the agreement over OSMO's real files.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { compileWorkflow } from "../../src/plan/index.js";
import {
  asRenderedTemplate,
  inlineLocalFiles,
  loadWorkflowSpec,
  type Diagnostic,
  type LoadOptions,
  type LoadResult,
} from "../../src/spec/index.js";

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
    await expectValid(
      doc("workflow:", "  name: wf", "  tasks:", "  - name: a", "    image: alpine", "    command: [true]", "", "default-values:"),
    );
  });

  it("still gives a template no variables", async () => {
    const src = doc(
      "workflow:",
      "  name: wf",
      "  tasks:",
      "  - name: a",
      "    image: alpine",
      "    command: [echo, '{{ n }}']",
      "default-values:",
    );
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
    const src = doc(
      "workflow:",
      "  name: wf",
      "  labels:",
      "    team: ''",
      "  tasks:",
      "  - name: a",
      "    image: alpine",
      "    command: [true]",
    );
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
    const src = oneTask("    environment:", '      A: "x {%- raw -%}  {{ undefined_here {% if %} {# #}  {%- endraw -%} y"');
    const r = await expectValid(src);
    expect(r.spec?.workflow.tasks?.[0]?.environment?.A).toBe("x{{ undefined_here {% if %} {# #}y");
  });

  it("place a problem in what they built at the line of the file that built it", async () => {
    const src = doc(
      "default-values:",
      "  n: 1",
      "workflow:",
      "  name: wf",
      "  groups:",
      "  - name: g",
      "    tasks:",
      "    - name: a",
      "      lead: true",
      "      image: alpine",
      '      command: [ping, "{% raw %}{{host:bb{% endraw %}{{ n + 1 }}{% raw %}}}{% endraw %}"]',
      "    - name: b1",
      "      image: alpine",
      "      command: [true]",
    );
    const d = await expectOneError(src, "E_UNKNOWN_HOST_TASK");
    expect(d.message).toBe("{{host:bb2}} names no task of this workflow");
    expect(d.line).toBe(11);
  });

  it("leave later errors at their own line and column", async () => {
    const src = oneTask("    environment:", '      A: "{% raw %}{{ a }}\\n{{ b }}{% endraw %} {{ missing }}"');
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
    const item = await expectOneError(
      src.replace("cfg.missing", "cfg.epochs_list[3]").replace("{epochs: 3}", "{epochs: 3, epochs_list: [1]}"),
      "E_TEMPLATE_UNDEFINED",
    );
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
    expect(warning?.message).toBe("--set seed=5: the template never uses `seed`, so it has no effect");
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
      ["W_UNUSED_VARIABLE", "--set-string seeds=3: the file uses no template variables, so it has no effect"],
    ]);
  });
});

describe("tokens in files that come from `localpath`", () => {
  const dir = mkdtempSync(join(tmpdir(), "troupe-osmo-localpath-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    join(dir, "client.sh"),
    "set -e\nuntil nc -z {{host:server}} 24831; do sleep 1; done\necho {{workflow_id}} > {{output}}/id\n",
  );
  writeFileSync(join(dir, "typo.sh"), "echo start\nnc {{host:sever}} 24831\n");
  writeFileSync(join(dir, "blob.bin"), Buffer.from([0x7b, 0x7b, 0x00, 0xff, 0x7d, 0x7d]));
  const pair = (script: string) =>
    doc(
      "workflow:",
      "  name: wf",
      "  groups:",
      "  - name: g",
      "    tasks:",
      "    - name: server",
      "      image: alpine",
      "      command: [nc, -l, -p, '24831']",
      "    - name: client",
      "      lead: true",
      "      image: alpine",
      "      command: [sh, /run.sh]",
      "      files:",
      "      - path: /run.sh",
      `        localpath: ${script}`,
      "      - path: /blob",
      "        localpath: blob.bin",
    );

  it("are substituted as in inline files: the planned file is text with its tokens", async () => {
    const r = await expectValid(pair("client.sh"), { baseDir: dir });
    const plan = compileWorkflow(inlineLocalFiles(r.spec!, dir));
    const [script, blob] = plan.groups[0]?.tasks.find((t) => t.name === "client")?.files ?? [];
    expect(script?.source.kind).toBe("text");
    const parts = script?.source.kind === "text" ? script.source.contents : [];
    expect(parts).toContainEqual({ kind: "host", task: "server" });
    expect(parts).toContainEqual({ kind: "workflow_id" });
    expect(parts).toContainEqual({ kind: "output" });
    // A file that is not text travels as it is.
    expect(blob?.source).toEqual({ kind: "base64", data: Buffer.from([0x7b, 0x7b, 0x00, 0xff, 0x7d, 0x7d]).toString("base64") });
  });

  it("are checked as in inline files, saying which file and line", async () => {
    const src = pair("typo.sh");
    const d = await expectOneError(src, "E_UNKNOWN_HOST_TASK", { baseDir: dir });
    expect(d.message).toBe("{{host:sever}} names no task of this workflow (in `typo.sh`, line 2)");
    expect(d.path).toBe("workflow.groups[0].tasks[1].files[0].localpath");
    expect(d.line).toBe(at(src, "localpath: typo.sh").line);
    expect(d.hint).toContain("server");
  });

  it("reach the server unrendered: the sent spec renders to itself", async () => {
    writeFileSync(join(dir, "tricky.sh"), "echo '{# not jinja #} {% if %} {% endraw %}' {{output}}\n");
    const r = await expectValid(pair("tricky.sh"), { baseDir: dir });
    const inlined = inlineLocalFiles(r.spec!, dir);
    const yaml = (await import("js-yaml")).dump(inlined, { lineWidth: -1, noRefs: true });
    const again = await expectValid(asRenderedTemplate(yaml));
    expect(again.spec?.workflow.groups?.[0]?.tasks[1]?.files?.[0]?.contents).toBe(
      "echo '{# not jinja #} {% if %} {% endraw %}' {{output}}\n",
    );
  });

  it("leave a file with braces that are no token as written, and say so when it has tokens too", async () => {
    writeFileSync(join(dir, "inspect.sh"), "docker inspect -f '{{.Id}}' x\n");
    writeFileSync(join(dir, "mixed.sh"), "nc {{host:server}} 1\ndocker inspect -f '{{.Id}}' x\n");
    const plain = await expectValid(pair("inspect.sh"), { baseDir: dir });
    expect(plain.diagnostics).toEqual([]);
    const file = inlineLocalFiles(plain.spec!, dir).workflow.groups?.[0]?.tasks[1]?.files?.[0];
    expect(file).toMatchObject({ base64: true });
    expect(Buffer.from(file?.contents ?? "", "base64").toString()).toBe("docker inspect -f '{{.Id}}' x\n");
    const mixed = await expectValid(pair("mixed.sh"), { baseDir: dir });
    expect(mixed.diagnostics.map((d) => [d.code, d.message])).toEqual([
      [
        "W_LOCALPATH_TOKENS_NOT_SUBSTITUTED",
        "`{{.Id}}` (in `mixed.sh`, line 2) is no token, so `mixed.sh` is used as written: its tokens are not substituted",
      ],
    ]);
  });
});

describe("{{host:X}} where X is no task of the group", () => {
  const groups = (token: string) =>
    doc(
      "workflow:",
      "  name: wf",
      "  resources:",
      "    gpu-box: {cpu: 1}",
      "  groups:",
      "  - name: serving",
      "    tasks:",
      "    - name: model-server",
      "      image: alpine",
      "      command: [serve]",
      "    - name: client",
      "      lead: true",
      "      image: alpine",
      `      command: [curl, 'http://${token}:8000']`,
      "  - name: other",
      "    tasks:",
      "    - name: loader",
      "      image: alpine",
      "      command: [load]",
    );

  it("stays an error (OSMO leaves it, to fail at run time), with the member meant", async () => {
    // As OSMO's nims cookbook: {{host:nim-server}} where the task is run-server.
    const d = await expectOneError(groups("{{host:mode-server}}"), "E_UNKNOWN_HOST_TASK");
    expect(d.hint).toBe("did you mean `model-server`?");
  });

  it("says when X is a resource or a group, and who can be reached", async () => {
    const resource = await expectOneError(groups("{{host:gpu-box}}"), "E_UNKNOWN_HOST_TASK");
    expect(resource.hint).toBe("`gpu-box` is a resource; {{host:...}} names a task: here `model-server`");
    const group = await expectOneError(groups("{{host:serving}}"), "E_UNKNOWN_HOST_TASK");
    expect(group.hint).toBe("`serving` is a group; {{host:...}} names a task: here `model-server`");
  });

  it("names the group X is in when it is a task of another group", async () => {
    const d = await expectOneError(groups("{{host:loader}}"), "E_HOST_OUTSIDE_GROUP");
    expect(d.message).toBe("{{host:loader}}: task `loader` is in group `other`, not in group `serving` with `client`");
    expect(d.hint).toContain("reaches only members of the same group");
  });
});

describe("E_DUPLICATE_NAME", () => {
  it("says where the first use is, line:column", async () => {
    const src = doc(
      "workflow:",
      "  name: wf",
      "  groups:",
      "  - name: prep",
      "    tasks:",
      "    - name: Fetch_Data",
      "      image: alpine",
      "      command: [true]",
      "  - name: train",
      "    tasks:",
      "    - name: fetch-data",
      "      image: alpine",
      "      command: [true]",
    );
    const d = await expectOneError(src, "E_DUPLICATE_NAME");
    const first = at(src, "Fetch_Data");
    expect(d.message).toBe(
      `task name \`fetch-data\` is already used by task \`Fetch_Data\` at ${first.line}:${first.column} (names are compared ignoring case, with \`_\` equal to \`-\`)`,
    );
    expect({ line: d.line, column: d.column }).toEqual(at(src, "fetch-data"));
  });

  it("places the first use in the file as written when a template made the names", async () => {
    const src = doc(
      "workflow:",
      "  name: wf",
      "  tasks:",
      "{% for i in range(2) %}",
      "  - name: same",
      "    image: alpine",
      "    command: [echo, '{{ i }}']",
      "{% endfor %}",
    );
    const d = await expectOneError(src, "E_DUPLICATE_NAME");
    expect(d.message).toContain(`at 5:11`);
  });
});

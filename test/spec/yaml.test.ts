import { describe, expect, it } from "vitest";
import { MAX_SPEC_BYTES, loadWorkflowSpec, type Diagnostic, type LoadOptions, type LoadResult } from "../../src/spec/index.js";
import { expectCostWithin } from "./timing.js";

// ---- helpers ----

type Lines = string | Lines[];
const flatten = (lines: Lines[]): string[] => lines.flatMap((l) => (typeof l === "string" ? [l] : flatten(l)));
const doc = (...lines: Lines[]): string => flatten(lines).join("\n") + "\n";
const head = ["workflow:", "  name: wf", "  tasks:"];
const task = (name: string, extra: string[] = []) => [
  `    - name: ${name}`,
  "      image: alpine",
  "      command: [echo]",
  ...extra.map((l) => `      ${l}`),
];
const valid = doc(head, task("a"));

const utf8 = (text: string) => new TextEncoder().encode(text);
function bytes(...parts: Array<string | number[]>): Uint8Array {
  const chunks = parts.map((p) => (typeof p === "string" ? utf8(p) : Uint8Array.from(p)));
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}

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

const load = (src: string | Uint8Array, options: LoadOptions = {}) => loadWorkflowSpec(src, options);

function only(r: LoadResult, code: string): Diagnostic {
  expect(r.ok).toBe(false);
  expect(r.spec).toBeUndefined();
  expect(
    r.diagnostics.map((d) => d.code),
    JSON.stringify(r.diagnostics, null, 1),
  ).toEqual([code]);
  return r.diagnostics[0] as Diagnostic;
}

/**
 * Loads an alias bomb, expecting it to cost about what its text costs: no more than a few times its twin
 * without aliases (the same scalars written out), measured alongside. Expanded, it would take forever.
 */
function loadBomb(src: string): Promise<LoadResult> {
  const twin = src.replace(/&l\d+ /g, "").replace(/\*l\d+/g, '"lol"');
  return expectCostWithin(
    "the alias bomb against its text without aliases",
    20,
    () => load(twin),
    () => load(src),
  );
}

/** Billion laughs: `levels` anchors, each a list of `fan` aliases to the one before. */
function aliasBomb(indent: string, levels = 9, fan = 10): string[] {
  const lines = [`${indent}l0: &l0 [${Array(fan).fill('"lol"').join(", ")}]`];
  for (let i = 1; i < levels; i++)
    lines.push(
      `${indent}l${i}: &l${i} [${Array(fan)
        .fill(`*l${i - 1}`)
        .join(", ")}]`,
    );
  return lines;
}

// ---- aliases ----

describe("alias bombs", () => {
  it("stops a billion-laughs document inside the workflow with E_YAML_ALIAS_LIMIT, quickly", async () => {
    const src = doc("workflow:", "  name: wf", "  labels:", aliasBomb("    "), "  tasks:", task("a"));
    const d = only(await loadBomb(src), "E_YAML_ALIAS_LIMIT");
    expect(d.line).toBeGreaterThanOrEqual(1);
  });

  it("stops an alias bomb in default-values", async () => {
    const src = doc("default-values:", aliasBomb("  "), valid);
    only(await loadBomb(src), "E_YAML_ALIAS_LIMIT");
  });

  it("stops an alias bomb in default-values of a templated file as an alias bomb, not as a slow template", async () => {
    const src = doc("default-values:", aliasBomb("  "), "workflow:", "  name: \"{{ 'wf' }}\"", "  tasks:", task("a"));
    only(await loadBomb(src), "E_YAML_ALIAS_LIMIT");
  });

  it("still accepts ordinary anchors and aliases", async () => {
    const src = doc(head, task("a", ["environment: &env", "  A: one", "  B: two"]), task("b", ["environment: *env"]));
    const r = await load(src);
    expect(r.diagnostics).toEqual([]);
    expect(r.spec?.workflow.tasks?.[1]?.environment).toEqual({ A: "one", B: "two" });
  });
});

// ---- size and encoding ----

describe("size limit", () => {
  it("rejects a file over `maxBytes`, counting bytes rather than characters", async () => {
    const src = doc(head, task("a", ["environment:", "  GREETING: héllo wörld"]));
    const size = Buffer.byteLength(src);
    expect(size).toBeGreaterThan(src.length);
    const d = only(await load(src, { maxBytes: src.length }), "E_FILE_TOO_LARGE");
    expect(d).toMatchObject({ path: "", line: 1, column: 1 });
    only(await load(utf8(src), { maxBytes: size - 1 }), "E_FILE_TOO_LARGE");
    expect((await load(src, { maxBytes: size })).ok).toBe(true);
  });

  it("rejects a real file over 10 MB at once", async () => {
    expect(MAX_SPEC_BYTES).toBe(10 * 1024 * 1024);
    const big = new Uint8Array(MAX_SPEC_BYTES + 1).fill(0x23); // '#': one huge comment
    // Refused before reading: in less time than the same comment one byte shorter, read whole, takes.
    const r = await expectCostWithin(
      "refusing 10 MB + 1 against reading 10 MB",
      1,
      () => load(big.subarray(1)),
      () => load(big),
    );
    only(r, "E_FILE_TOO_LARGE");
  });
});

describe("encoding", () => {
  it("rejects invalid UTF-8 with the line and column of the bad byte", async () => {
    const src = bytes("workflow:\n  name: wf\n  pool: é", [0xff], "\n  tasks:\n");
    const d = only(await load(src), "E_INVALID_UTF8");
    expect(d).toMatchObject({ line: 3, column: 10 });
    expect(d.message).toContain("byte 0xff at offset 31");
  });

  it("rejects a lone continuation byte and a truncated sequence at the end", async () => {
    const lone = bytes(doc(head, "    - name: a"), "      image: alp", [0x80], "ine\n");
    expect(only(await load(lone), "E_INVALID_UTF8")).toMatchObject({ line: 5, column: 17 });
    const truncated = bytes(valid, "# caf", [0xc3]);
    expect(only(await load(truncated), "E_INVALID_UTF8")).toMatchObject({ line: 7, column: 6 });
  });

  it("accepts a UTF-8 byte order mark, as bytes and as a string", async () => {
    for (const src of [bytes([0xef, 0xbb, 0xbf], valid), "\ufeff" + valid]) {
      const r = await load(src);
      expect(r.diagnostics).toEqual([]);
      expect(r.spec?.workflow.name).toBe("wf");
    }
  });

  it("rejects control characters with their place", async () => {
    const src = doc(head, task("a", ['args: ["a\u0007b"]']));
    expect(only(await load(src), "E_CONTROL_CHARACTER")).toMatchObject(at(src, "\u0007"));
  });
});

// ---- structure of the document ----

describe("document shape", () => {
  it.each([
    ["an empty file", ""],
    ["only whitespace", "\n  \n\n"],
    ["only comments", "# nothing here\n# yet\n"],
    ["an empty document marker", "---\n"],
  ])("reports %s as E_EMPTY_FILE", async (_what, src) => {
    expect(only(await load(src), "E_EMPTY_FILE")).toMatchObject({ line: 1, column: 1 });
  });

  it.each([
    ["a list", "- workflow\n- name\n"],
    ["a string", "just some text\n"],
    ["a number", "42\n"],
  ])("rejects a top level that is %s", async (_what, src) => {
    expect(only(await load(src), "E_NOT_A_MAPPING")).toMatchObject({ line: 1, column: 1 });
  });
});

describe("duplicate keys", () => {
  it("warns about a duplicate key, keeps the last value and stays valid", async () => {
    const src = doc(head, task("a", ["image: busybox"]));
    const r = await load(src);
    expect(r.ok).toBe(true);
    expect(r.diagnostics).toHaveLength(1);
    expect(r.diagnostics[0]).toMatchObject({
      severity: "warning",
      code: "W_DUPLICATE_KEY",
      path: "workflow.tasks[0].image",
      ...at(src, "image", 1),
    });
    expect(r.spec?.workflow.tasks?.[0]?.image).toBe("busybox");
  });

  it("warns about a duplicate key directly under `workflow`", async () => {
    const src = doc("workflow:", "  name: first", "  name: second", "  tasks:", task("a"));
    const r = await load(src);
    expect(r.ok).toBe(true);
    expect(r.diagnostics).toEqual([
      expect.objectContaining({ code: "W_DUPLICATE_KEY", path: "workflow.name", ...at(src, "name: second") }),
    ]);
    expect(r.spec?.workflow.name).toBe("second");
  });

  it("keeps reporting errors next to the warning", async () => {
    const src = doc(head, task("a", ["image: busybox", "imgae: x"]));
    const r = await load(src);
    expect(r.ok).toBe(false);
    expect(r.diagnostics.map((d) => d.code).sort()).toEqual(["E_UNKNOWN_FIELD", "W_DUPLICATE_KEY"]);
  });
});

describe("syntax errors", () => {
  it("reports a badly indented key with its line", async () => {
    const src = doc(head, "    - name: a", "      image: alpine", "     command: [echo]");
    const r = await load(src);
    expect(r.ok).toBe(false);
    expect(r.diagnostics.length).toBeGreaterThanOrEqual(1);
    expect(new Set(r.diagnostics.map((d) => d.code))).toEqual(new Set(["E_YAML_SYNTAX"]));
    expect(r.diagnostics[0]?.line).toBe(at(src, "     command").line);
  });

  it("reports an unclosed flow sequence near where it breaks", async () => {
    const src = doc(head, "    - name: a", "      image: alpine", "      command: [echo", "    - name: b", "      image: alpine");
    const r = await load(src);
    expect(r.ok).toBe(false);
    const d = r.diagnostics[0] as Diagnostic;
    expect(d.code).toBe("E_YAML_SYNTAX");
    expect(d.line).toBeGreaterThanOrEqual(at(src, "[echo").line);
    expect(d.line).toBeLessThanOrEqual(at(src, "- name: b").line);
  });

  it("reports a tab used for indentation", async () => {
    const src = doc(head, "    - name: a", "\timage: alpine", "      command: [echo]");
    const r = await load(src);
    expect(r.ok).toBe(false);
    expect(r.diagnostics[0]).toMatchObject({ code: "E_YAML_SYNTAX", line: at(src, "\timage").line });
  });
});

describe("YAML features", () => {
  it("supports merge keys", async () => {
    const src = doc(
      head,
      "    - &base",
      "      name: a",
      "      image: alpine",
      "      command: [echo, base]",
      "      environment: {A: one}",
      "    - <<: *base",
      "      name: b",
      "      command: [echo, override]",
    );
    const r = await load(src);
    expect(r.diagnostics).toEqual([]);
    const [a, b] = r.spec?.workflow.tasks ?? [];
    expect(b).toEqual({ name: "b", image: "alpine", command: ["echo", "override"], environment: { A: "one" } });
    expect(a?.command).toEqual(["echo", "base"]);
  });

  it("supports merging a list of mappings", async () => {
    const src = doc(
      "workflow:",
      "  name: wf",
      "  resources:",
      "    small: &small {cpu: 1, memory: 1Gi}",
      "    gpu: &gpu {gpu: 1}",
      "    both:",
      "      <<: [*small, *gpu]",
      "      cpu: 4",
      "  tasks:",
      task("a", ["resource: both"]),
    );
    const r = await load(src);
    expect(r.diagnostics).toEqual([]);
    expect(r.spec?.workflow.resources?.both).toEqual({ cpu: 4, memory: "1Gi", gpu: 1 });
  });

  it("reads scalars the same way (YAML 1.2 core) with and without anchors in the file", async () => {
    const words = ["args: [yes, no, on, off, 0o17, 012, 1e3]", "environment: {FLAG: yes}"];
    const plain = await load(doc(head, task("a", words)));
    const anchored = await load(doc(head, task("a", words), task("b", ["environment: &e {X: y}"])));
    expect(plain.diagnostics).toEqual([]);
    expect(anchored.diagnostics).toEqual([]);
    const a = plain.spec?.workflow.tasks?.[0];
    expect(a?.args).toEqual(["yes", "no", "on", "off", "15", "12", "1000"]);
    expect(a?.environment).toEqual({ FLAG: "yes" });
    expect(anchored.spec?.workflow.tasks?.[0]).toEqual(a);
  });
});

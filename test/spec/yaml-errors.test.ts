/** YAML problems that used to surface as internal errors get messages of their own, at their place. */
import { describe, expect, it } from "vitest";
import { loadWorkflowSpec, type Diagnostic, type LoadResult } from "../../src/spec/index.js";
import { expectCostWithin } from "./timing.js";

const head = "workflow:\n  name: wf\n";
const task = "    - name: a\n      image: alpine\n      command: [echo]\n";

function only(r: LoadResult, code: string): Diagnostic {
  expect(r.ok).toBe(false);
  expect(
    r.diagnostics.map((d) => d.code),
    JSON.stringify(r.diagnostics, null, 1),
  ).toEqual([code]);
  return r.diagnostics[0] as Diagnostic;
}

describe("aliases", () => {
  it("reports an alias naming no anchor as such, not as an alias bomb", async () => {
    const d = only(await loadWorkflowSpec(`${head}  tasks: *nope\n`), "E_YAML_UNKNOWN_ALIAS");
    expect(d).toMatchObject({ line: 3, column: 10, message: "alias *nope names no anchor" });
  });

  it("reports an alias before its anchor", async () => {
    const src = `${head}  tasks:\n    - name: a\n      image: *img\n      command: [echo]\n    - name: b\n      image: &img alpine\n      command: [echo]\n`;
    const d = only(await loadWorkflowSpec(src), "E_YAML_UNKNOWN_ALIAS");
    expect(d).toMatchObject({ line: 5, column: 14, message: "alias *img comes before its anchor &img" });
  });

  it("reports a merge of something that is not a mapping", async () => {
    const src = `${head}  tasks:\n    - <<: [alpine]\n      name: a\n      image: alpine\n      command: [echo]\n`;
    const d = only(await loadWorkflowSpec(src), "E_YAML_MERGE");
    expect(d).toMatchObject({ line: 4, column: 11 });
  });
});

describe("nesting", () => {
  const flow = (depth: number) => `${head}  labels: {a: ${"[".repeat(depth)}${"]".repeat(depth)}}\n  tasks:\n${task}`;
  const block = (depth: number) =>
    `${head}  labels:\n${Array.from({ length: depth }, (_, i) => `${" ".repeat(4 + i)}k:`).join("\n")} x\n  tasks:\n${task}`;

  it.each([
    ["flow", 100_000],
    ["flow", 500],
    ["block", 2000],
  ] as const)("reports %s nesting too deep with its place, quickly", async (style, depth) => {
    // Against a tenth of the text of the same shape, measured alongside: about a tenth of the time (a reading that
    // went back over the levels would take a hundred times as long). A block's indentation grows with its depth.
    const make = style === "flow" ? flow : block;
    const tenth = style === "flow" ? Math.ceil(depth / 10) : Math.ceil(depth / Math.sqrt(10));
    const src = make(depth);
    const r = await expectCostWithin(
      `${style} nesting, ${depth} levels against ${tenth}`,
      30,
      () => loadWorkflowSpec(make(tenth)),
      () => loadWorkflowSpec(src),
    );
    const d = only(r, "E_YAML_TOO_DEEP");
    expect(d.message).toBe("nesting deeper than 100 levels");
    expect(d.line).toBeGreaterThanOrEqual(3);
    expect(d.column).toBeGreaterThan(1);
  });

  it("places the report at the first node too deep", async () => {
    const d = only(await loadWorkflowSpec(block(200)), "E_YAML_TOO_DEEP");
    // The file's mapping (1) > workflow's (2) > labels' (3) > the first `k`'s (4)...: the 98th `k`
    // (line 101) is at level 101.
    expect(d).toMatchObject({ line: 101, column: 4 + 97 + 1 });
  });

  it("reports nesting too deep inside a template's output", async () => {
    const src = `${head}  labels: {a: ${"[".repeat(300)}{{ 1 }}${"]".repeat(300)}}\n  tasks:\n${task}`;
    const d = only(await loadWorkflowSpec(src), "E_YAML_TOO_DEEP");
    expect(d.line).toBe(3);
  });

  it("accepts nesting up to the limit as before", async () => {
    const r = await loadWorkflowSpec(`${head}  labels: {a: ${"[".repeat(90)}${"]".repeat(90)}}\n  tasks:\n${task}`);
    expect(r.diagnostics.map((d) => d.code)).toEqual(["E_WRONG_TYPE"]);
  });
});

describe("nesting through aliases", () => {
  /** `count` anchors under default-values, each `levels` lists deep around an alias of the one before. */
  const chain = (count: number, levels: number) => {
    const lines = ["default-values:"];
    for (let i = 0; i < count; i++) {
      const inner = i === 0 ? "x" : `*a${i - 1}`;
      lines.push(`  v${i}: &a${i} ${"[".repeat(levels)}${inner}${"]".repeat(levels)}`);
    }
    return `${lines.join("\n")}\n${head}  tasks:\n${task}`;
  };

  it("reports the alias whose expansion nests too deep, at its place", async () => {
    // v0's list: levels 3..42, x at 43; v1 nests a0 (height 41) at level 43: 83; v2's at 43 + 81 - 1 = 123.
    const src = chain(3, 40);
    const d = only(await loadWorkflowSpec(src), "E_YAML_TOO_DEEP");
    expect(d).toMatchObject({ line: 4, column: 11 + 40, message: "nesting deeper than 100 levels once alias *a1 is expanded" });
  });

  it("stops a long chain of anchors quickly, without overflowing the stack", async () => {
    // Against a tenth of the chain, measured alongside: about a tenth of the time, not a hundredth.
    const r = await expectCostWithin(
      "3,000 anchors against 300",
      30,
      () => loadWorkflowSpec(chain(300, 10)),
      () => loadWorkflowSpec(chain(3000, 10)),
    );
    only(r, "E_YAML_TOO_DEEP");
  });

  it("accepts an anchor used thousands of times (was an alias bomb beyond 1,000 uses)", async () => {
    const tasks = Array.from({ length: 3000 }, (_, i) =>
      i === 0
        ? "    - &t {name: t0, image: alpine, command: [echo], environment: &env {A: x}}"
        : `    - {<<: *t, name: t${i}, environment: *env}`,
    );
    const r = await loadWorkflowSpec(`${head}  tasks:\n${tasks.join("\n")}\n`);
    expect(r.diagnostics).toEqual([]);
    expect(r.spec?.workflow.tasks?.[2999]).toEqual({ name: "t2999", image: "alpine", command: ["echo"], environment: { A: "x" } });
  });

  it("reads many aliases in linear time", async () => {
    // The package's own conversion looks each alias up from the file's start: about 10 s for these.
    const src = (n: number) => `default-values:\n  one: &a {k: v}\n  many: [${Array(n).fill("*a").join(", ")}]\n${head}  tasks:\n${task}`;
    // Ten times the aliases, about ten times the time (a quadratic reading would take a hundred times).
    const r = await expectCostWithin(
      "60,000 aliases against 6,000",
      30,
      () => loadWorkflowSpec(src(6_000)),
      () => loadWorkflowSpec(src(60_000)),
    );
    expect(r.diagnostics).toEqual([]);
  });

  it("reports an alias inside the node it names", async () => {
    const d = only(await loadWorkflowSpec(`${head}  labels: &a {x: *a}\n  tasks:\n${task}`), "E_YAML_ALIAS_CYCLE");
    expect(d).toMatchObject({ line: 3, column: 18, message: "alias *a is inside the node it names" });
  });

  it("reports an alias bomb at the alias where the expansion passes the limit", async () => {
    const levels = Array.from({ length: 9 }, (_, i) =>
      i === 0
        ? '    l0: &l0 ["lol", "lol"]'
        : `    l${i}: &l${i} [${Array(10)
            .fill(`*l${i - 1}`)
            .join(", ")}]`,
    );
    const d = only(await loadWorkflowSpec(`${head}  labels:\n${levels.join("\n")}\n  tasks:\n${task}`), "E_YAML_ALIAS_LIMIT");
    // l_k holds 1 + 10 x l_(k-1) nodes (l0: 3, l5: 311,111): l1 to l5 add 345,670, and the sixth alias of l6 passes 2,000,000.
    expect(d).toMatchObject({ line: 10, column: 14 + 5 * 5 });
    expect(d.message).toBe("aliases expand the file beyond 2,000,000 nodes from here (alias *l5)");
  });

  it("accepts aliases that stay within the limit", async () => {
    const r = await loadWorkflowSpec(chain(2, 40));
    expect(r.diagnostics).toEqual([]);
  });
});

describe("documents and tags", () => {
  it("reports a second document at its `---`", async () => {
    const d = only(await loadWorkflowSpec(`${head}  tasks:\n${task}---\nworkflow: {}\n`), "E_YAML_MULTIPLE_DOCUMENTS");
    expect(d.line).toBe(7);
  });

  it("reports an unknown tag", async () => {
    const d = only(await loadWorkflowSpec(`${head}  pool: !secret x\n  tasks:\n${task}`), "E_YAML_TAG");
    expect(d).toMatchObject({ line: 3, column: 9, message: "unknown tag `!secret`" });
  });

  it("reports a mapping used as a key", async () => {
    const d = only(await loadWorkflowSpec(`${head}  labels:\n    ? {a: 1}\n    : x\n  tasks:\n${task}`), "E_YAML_KEY");
    expect(d.line).toBe(4);
  });
});

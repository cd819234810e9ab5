// Validation stays linear on files with very many problems (issue 11), lists
// the first MAX_DIAGNOSTICS of them and says how many more there are, and
// still suggests names where a file has a few typos.
import { describe, expect, it } from "vitest";
import { loadWorkflowSpec } from "../../src/spec/index.js";
import { expectCostWithin } from "./timing.js";

const MB = 1024 * 1024;

function unknownInputs(n: number, ref: (i: number) => string): string {
  const lines = ["workflow:", "  name: wf", "  tasks:"];
  for (let i = 0; i < n; i++) lines.push(`  - {name: t${i}, image: alpine, command: [run], inputs: [{task: ${ref(i)}}]}`);
  return lines.join("\n") + "\n";
}

function unknownFields(n: number): string {
  const lines = ["workflow:", "  name: wf", "  tasks:", "  - name: t0", "    image: alpine", "    command: [run]"];
  for (let i = 0; i < n; i++) lines.push(`    field${i}: ${i}`);
  return lines.join("\n") + "\n";
}

const load = (text: string) => loadWorkflowSpec(text, { maxBytes: 20 * MB });

describe("validation of files with very many problems", () => {
  // Before: 10,000 unknown inputs took 17.8 s and 20,000 over 60 s (a list of
  // every task name and a suggestion against it per problem); 100,000 unknown
  // fields in one mapping over 30 s (each located by scanning the mapping).
  it("20,000 inputs naming unknown tasks: linear, the first 1,000 listed, the rest counted", async () => {
    // Ten times the problems, about ten times the time (quadratic: a hundred), measured alongside.
    const result = await expectCostWithin(
      "20,000 unknown inputs against 2,000",
      30,
      () => load(unknownInputs(2_000, (i) => `missing${i}`)),
      () => load(unknownInputs(20_000, (i) => `missing${i}`)),
    );
    expect(result.ok).toBe(false);
    expect(result.diagnostics).toHaveLength(1001);
    expect(result.diagnostics[0]).toMatchObject({ code: "E_UNKNOWN_INPUT_TASK", path: "workflow.tasks[0].inputs[0].task", line: 4 });
    expect(result.diagnostics[999]).toMatchObject({ path: "workflow.tasks[999].inputs[0].task", line: 1003 });
    const more = result.diagnostics[1000];
    expect(more).toMatchObject({ severity: "error", code: "E_MORE_PROBLEMS", line: 0 });
    expect(more?.message).toMatch(/^\.\.\. and 19,000 more problems \(19,000 errors, 0 warnings\)/);
  }, 60_000);

  it("100,000 unknown fields in one task: linear, each at its key", async () => {
    const result = await expectCostWithin(
      "100,000 unknown fields against 10,000",
      30,
      () => load(unknownFields(10_000)),
      () => load(unknownFields(100_000)),
    );
    expect(result.diagnostics).toHaveLength(1001);
    expect(result.diagnostics[0]).toMatchObject({ code: "E_UNKNOWN_FIELD", path: "workflow.tasks[0].field0", line: 7, column: 5 });
    expect(result.diagnostics[999]).toMatchObject({ path: "workflow.tasks[0].field999", line: 1006, column: 5 });
    expect(result.diagnostics[1000]?.message).toMatch(/99,000 more problems/);
  }, 60_000);

  it("still suggests names: every typo of a normal file, the first ones of a huge one", async () => {
    const small = await loadWorkflowSpec(unknownInputs(200, (i) => (i === 0 ? "t199" : `t${i - 1}x`)));
    const hints = small.diagnostics.map((d) => d.hint);
    expect(hints).toHaveLength(199);
    expect(hints[0]).toBe("did you mean `t0`?");
    expect(hints[198]).toBe("did you mean `t198`?");

    const result = await load(unknownInputs(20_000, (i) => (i === 0 ? "t1" : `t${i - 1}x`)));
    expect(result.diagnostics[0]?.hint).toBe("did you mean `t0`?");
    expect(result.diagnostics.filter((d) => d.hint?.startsWith("did you mean")).length).toBeGreaterThan(10);
  }, 60_000);

  it("lists every problem of a file with fewer than 1,000", async () => {
    const result = await load(unknownFields(999));
    expect(result.diagnostics).toHaveLength(999);
    expect(result.diagnostics.some((d) => d.code === "E_MORE_PROBLEMS")).toBe(false);
  });
});

describe("the first 1,000 problems of a large file", () => {
  /** Problems of several kinds, found by different passes, all over the file. */
  function mixed(n: number, name: string): string {
    const lines = ["workflow:", `  name: ${name}`, "  tasks:"];
    for (let i = n - 1; i >= 0; i--) {
      const image = i % 7 === 0 ? "" : ", image: alpine";
      const extra = i % 5 === 0 ? ", imgae: x" : "";
      const inputs = i % 3 === 0 ? `, inputs: [{task: nope${i}}]` : i > 0 ? `, inputs: [{task: t${i - 1}}]` : "";
      lines.push(`  - {name: t${i}${image}, command: [run]${extra}${inputs}}`);
    }
    lines.push("  timeout: {exec_timeout: soon}");
    return lines.join("\n") + "\n";
  }

  it("are the same whether positions come from js-yaml read in part or from the yaml package", async () => {
    const fast = await loadWorkflowSpec(mixed(12_000, "wf")); // 0.9 MB: read in part
    // An anchor sends the file to the yaml package, which reads it whole.
    const careful = await loadWorkflowSpec(mixed(12_000, "&n wf"));
    expect(fast.diagnostics).toHaveLength(1001);
    expect(fast.diagnostics.at(-1)?.message).toMatch(/^\.\.\. and [\d,]+ more problems/);
    expect(fast.diagnostics).toEqual(careful.diagnostics);
    expect(new Set(fast.diagnostics.map((d) => d.code))).toEqual(
      new Set(["E_MISSING_FIELD", "E_UNKNOWN_FIELD", "E_UNKNOWN_INPUT_TASK", "E_MORE_PROBLEMS"]),
    );
  });

  it("a task missing a field before 100,000 unknown ones: listed first, at the task", async () => {
    const text = unknownFields(100_000).replace("    command: [run]\n", "");
    const result = await load(text);
    expect(result.diagnostics[0]).toMatchObject({ code: "E_MISSING_FIELD", path: "workflow.tasks[0].command", line: 4, column: 5 });
    expect(result.diagnostics[1]).toMatchObject({ code: "E_UNKNOWN_FIELD", path: "workflow.tasks[0].field0", line: 6 });
  }, 60_000);
});

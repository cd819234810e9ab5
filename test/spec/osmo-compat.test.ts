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

/**
 * A NUL can reach no program (it ends a C string) and troupe's helpers
 * separate fields with it: one in a command, an argument or the environment
 * would become extra directives or flags (a bind of troupe's home, a
 * `--privileged` for podman). Refused at validation, wherever it is written.
 */
import { describe, expect, it } from "vitest";
import { loadWorkflowSpec } from "../../src/spec/index.js";

const task = (fields: string) => `workflow:\n  name: wf\n  tasks:\n  - name: t\n    image: alpine\n${fields}`;

describe("a NUL character", () => {
  it.each([
    ["the command", '    command: ["sh\\0bind\\0/\\0/tmp/h"]\n', "workflow.tasks[0].command[0]"],
    ["an argument", '    command: [sh]\n    args: ["-c", "echo \\0--privileged"]\n', "workflow.tasks[0].args[1]"],
    ["a variable's value", '    command: [env]\n    environment: {X: "a\\0bind\\0/\\0/tmp/h"}\n', "workflow.tasks[0].environment.X"],
    ["a variable's name", '    command: [env]\n    environment: {"X\\0--volume=/:/host": "a"}\n', "workflow.tasks[0].environment"],
  ])("in %s is an error, at its place", async (_what, fields, path) => {
    const result = await loadWorkflowSpec(task(fields));
    expect(result.ok).toBe(false);
    const nul = result.diagnostics.filter((d) => d.code === "E_NUL_CHARACTER");
    expect(nul, JSON.stringify(result.diagnostics)).toHaveLength(1);
    expect(nul[0]!.path.startsWith(path)).toBe(true);
    expect(nul[0]!.message).toMatch(/contains a NUL character/);
  });

  it("in a template's output too", async () => {
    const result = await loadWorkflowSpec(task('    command: ["{{ x }}"]\n'), { variables: { set: { x: "a\0b" }, setString: {} } });
    expect(result.diagnostics.map((d) => d.code)).toContain("E_NUL_CHARACTER");
  });
});

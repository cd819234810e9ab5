// Template errors say what is wrong, where (issue 11): an unclosed block gave
// "Cannot read properties of undefined (reading 'type')", `--set range=1`
// gave "Variable already declared".
import { describe, expect, it } from "vitest";
import { loadWorkflowSpec, type LoadOptions } from "../../src/spec/index.js";

async function only(text: string, options: LoadOptions = {}) {
  const result = await loadWorkflowSpec(text, options);
  expect(result.ok).toBe(false);
  expect(result.diagnostics).toHaveLength(1);
  return result.diagnostics[0]!;
}

const head = "workflow:\n  name: wf\n  tasks:\n";
const task = "  - {name: t{{ i }}, image: alpine, command: [run]}\n";

describe("template syntax errors", () => {
  it("a `{% for %}` never closed: said so, at the `{% for %}`", async () => {
    const d = await only(`${head}{% for i in range(3) %}\n${task}`);
    expect(d).toMatchObject({ code: "E_TEMPLATE_SYNTAX", line: 4, column: 1 });
    expect(d.message).toBe("template syntax error: `{% for %}` is never closed: the file ends before its `{% endfor %}`");
  });

  it("an `{% if %}` never closed, inside a closed loop", async () => {
    const d = await only(`${head}{% for i in range(3) %}\n  {% if i %}\n${task}{% endfor %}\n`);
    expect(d).toMatchObject({ code: "E_TEMPLATE_SYNTAX", line: 7, column: 1 });
    expect(d.message).toBe(
      "template syntax error: `{% endfor %}` cannot close the `{% if %}` opened at line 5, column 3: that one needs `{% endif %}` first",
    );
  });

  it("blocks or expressions nested deeper than the interpreter's stack: said so (not a stack overflow, nor 'exceeds 100 MB')", async () => {
    const blocks = await only(`${head}${"{% if true %}".repeat(30_000)}\n${task.replace("{{ i }}", "0")}${"{% endif %}".repeat(30_000)}\n`);
    expect(blocks).toMatchObject({ code: "E_TEMPLATE_TOO_DEEP", line: 4, column: 1 });
    expect(blocks.message).toMatch(/^the template is nested too deeply/);
    const parens = await only(
      `workflow:\n  name: x{{ ${"(".repeat(20_000)}1${")".repeat(20_000)} }}\n  tasks:\n${task.replace("{{ i }}", "0")}`,
    );
    expect(parens).toMatchObject({ code: "E_TEMPLATE_TOO_DEEP", line: 2, column: 10 });
  });

  it("a closing tag with nothing open", async () => {
    const d = await only(`${head}${task.replace("{{ i }}", "0")}{% endif %}\n`);
    expect(d).toMatchObject({
      code: "E_TEMPLATE_SYNTAX",
      line: 5,
      column: 1,
      message: "template syntax error: `{% endif %}` closes no open block",
    });
  });

  it("never an interpreter's internal message", async () => {
    for (const text of [`${head}{% for i in range(3) %}`, `${head}{% if true %}\n{% for x in y %}\n`, `${head}{% macro m() %}\n`]) {
      const d = await only(text);
      expect(d.code).toBe("E_TEMPLATE_SYNTAX");
      expect(d.message).not.toMatch(/Cannot read properties|undefined \(reading/);
      expect(d.line).toBeGreaterThan(3);
    }
  });
});

describe("variables named like Jinja's built-ins", () => {
  const uses = `${head}  - {name: t{{ n }}, image: alpine, command: [run]}\n`;

  it.each([
    ["set", "range", "the function `range()`"],
    ["set", "namespace", "the function `namespace()`"],
    ["setString", "true", "the constant `true`"],
    ["setString", "None", "the constant `None`"],
  ] as const)("--%s %s=1 names the variable and the built-in", async (flag, name, what) => {
    const d = await only(uses, { variables: { [flag]: { n: "1", [name]: "1" } } });
    const option = flag === "set" ? "--set" : "--set-string";
    expect(d).toMatchObject({ code: "E_BAD_VARIABLE", line: 0, column: 0 });
    expect(d.message).toBe(`${option} ${name}=…: \`${name}\` is a Jinja built-in (${what}), so it cannot be a variable`);
  });

  it("in default-values: at its key", async () => {
    const d = await only(`default-values:\n  n: 1\n  range: 3\n${uses}`);
    expect(d).toMatchObject({ code: "E_BAD_VARIABLE", path: "default-values.range", line: 3, column: 3 });
    expect(d.message).toBe("default-values: `range` is a Jinja built-in (the function `range()`), so it cannot be a variable");
  });

  it("ordinary names stay usable", async () => {
    const result = await loadWorkflowSpec(uses, { variables: { set: { n: "1", ranges: "2", true_: "3" } } });
    // Accepted; the two the template does not use are only warned about.
    expect(result.diagnostics.map((d) => d.code)).toEqual(["W_UNUSED_VARIABLE", "W_UNUSED_VARIABLE"]);
  });
});

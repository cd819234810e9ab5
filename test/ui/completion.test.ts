/** The submit editor's key completion (ui/src/submit/completion.ts): the key path from indentation, the schema's keys there. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { keyContextAt, keysAt, type JsonSchema } from "../../ui/src/submit/completion.js";
import { ROOT } from "../run/helpers.js";

const schema = JSON.parse(readFileSync(join(ROOT, "schema", "workflow.schema.json"), "utf8")) as JsonSchema;
/** The document with the cursor at "|". */
const at = (text: string) => keyContextAt(text.replace("|", ""), text.indexOf("|"));

describe("keyContextAt", () => {
  it("reads the path of a key typed in a group's task, and the keys that task has already", () => {
    const context = at("workflow:\n  name: w\n  groups:\n  - name: g\n    tasks:\n    - name: t\n      image: alpine\n      com|");
    expect(context).toEqual({
      path: ["workflow", "groups", "[]", "tasks", "[]"],
      typed: "com",
      from: expect.any(Number),
      present: ["image", "name"],
    });
  });

  it("knows a new list item's first key, a list at its key's column, and top-level keys", () => {
    expect(at("workflow:\n  tasks:\n  - |")?.path).toEqual(["workflow", "tasks", "[]"]);
    expect(at("workflow:\n  groups:\n  - name: g\n    tasks:\n    - name: a\n    - in|")?.path).toEqual([
      "workflow",
      "groups",
      "[]",
      "tasks",
      "[]",
    ]);
    expect(at("workflow:\n  na|")?.path).toEqual(["workflow"]);
    expect(at("wo|")?.path).toEqual([]);
    expect(at("workflow:\n  tasks:\n  - name: a\n    inputs:\n    - ta|")?.path).toEqual(["workflow", "tasks", "[]", "inputs", "[]"]);
  });

  it("offers nothing where a value goes", () => {
    expect(at("workflow:\n  name: my|")).toBeUndefined();
    expect(at('workflow:\n  tasks:\n  - command: ["a", |')).toBeUndefined();
  });
});

describe("keysAt", () => {
  it("offers a task's keys under a group's task, and a mapping or list value as a block", () => {
    const keys = keysAt(schema, ["workflow", "groups", "[]", "tasks", "[]"]);
    const names = keys.map((k) => k.key);
    for (const key of ["name", "image", "command", "args", "inputs", "outputs", "lead"]) expect(names).toContain(key);
    expect(keys.find((k) => k.key === "inputs")?.block).toBe(true);
    expect(keys.find((k) => k.key === "image")?.block).toBe(false);
  });

  it("offers the workflow's keys under workflow, and nothing under a path the schema has not", () => {
    expect(keysAt(schema, ["workflow"]).map((k) => k.key)).toEqual(expect.arrayContaining(["name", "tasks", "groups", "resources"]));
    expect(keysAt(schema, []).map((k) => k.key)).toContain("workflow");
    expect(keysAt(schema, ["workflow", "nothing"])).toEqual([]);
  });
});

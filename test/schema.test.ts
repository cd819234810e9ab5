import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { renderJsonSchema } from "../src/cli/schema.js";

describe("the committed JSON Schema", () => {
  it("is the one generated from the spec schema (regenerate with `npm run schema`)", async () => {
    const committed = readFileSync(new URL("../schema/workflow.schema.json", import.meta.url), "utf8");
    expect(committed).toBe(await renderJsonSchema());
  });

  it("describes the workflow file strictly", async () => {
    const schema = JSON.parse(await renderJsonSchema());
    expect(schema.required).toEqual(["workflow"]);
    expect(schema.additionalProperties).toBe(false);
    const task = schema.properties.workflow.properties.tasks.items;
    expect(task.additionalProperties).toBe(false);
    expect(task.required).toEqual(expect.arrayContaining(["name", "image", "command"]));
    expect(task.properties.name.pattern).toBe("^[a-zA-Z]([a-zA-Z0-9_-]*[a-zA-Z0-9])?$");
    // OSMO's coercion: numbers and booleans are accepted where strings are expected.
    expect(task.properties.command.items.type).toEqual(["string", "number", "boolean"]);
  });
});

/** Every file in examples/ validates and plans; the tutorial's three are verbatim copies. */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { compileWorkflow } from "../src/plan/index.js";
import { loadWorkflowSpec } from "../src/spec/index.js";
import { formatPlan } from "../src/cli/format.js";
import pc from "picocolors";

const examplesDir = new URL("../examples/", import.meta.url);
/** Workflow files: server-config.yaml is a server's config (test/cli/small-things.test.ts loads it). */
const files = readdirSync(examplesDir).filter((f) => f.endsWith(".yaml") && f !== "server-config.yaml");

describe("examples/", () => {
  it("holds the tutorial's workflows and one example per feature", () => {
    expect(files).toEqual(
      expect.arrayContaining([
        "parallel_tasks.yaml",
        "group_tasks.yaml",
        "group_tasks_communication.yaml",
        "templated_fanout.yaml",
        "data_passing.yaml",
        "exit_actions.yaml",
        "timeouts.yaml",
        "resources.yaml",
        "object_storage.yaml",
      ]),
    );
  });

  // SHA-256 of the tutorial's files as published (shared/examples/); CI has no copy of them beside the clone.
  const tutorial: Record<string, string> = {
    "parallel_tasks.yaml": "f30190c97050a18fe58129aad66fb11f224c704deb3dae6d710f5382564fad8f",
    "group_tasks.yaml": "e0311abc91fd78917c3f98f4770ca69ce40f4dd0779ff10f64c2d3190fd52da7",
    "group_tasks_communication.yaml": "40668b74c496c9112fee149674462e954cc66ca80c3a69ff6df7141d3848d21a",
  };
  it.each(Object.keys(tutorial))("%s is the tutorial's file verbatim", (name) => {
    const digest = createHash("sha256")
      .update(readFileSync(new URL(name, examplesDir)))
      .digest("hex");
    expect(digest).toBe(tutorial[name]);
  });

  it.each(files)("%s validates without problems and plans", async (name) => {
    const result = await loadWorkflowSpec(readFileSync(new URL(name, examplesDir)), {
      baseDir: new URL(".", new URL(name, examplesDir)).pathname,
      maxRetries: 1,
    });
    expect(result.diagnostics).toEqual([]);
    const plan = compileWorkflow(result.spec!);
    expect(plan.taskCount).toBeGreaterThan(0);
    expect(plan.groups.every((g) => g.tasks[g.leadIndex]?.lead === true)).toBe(true);
  });

  it("object_storage.yaml plans its url: inputs and outputs, and the regexes that filter them", async () => {
    const result = await loadWorkflowSpec(readFileSync(new URL("object_storage.yaml", examplesDir)), {
      variables: { set: { bucket: "lab" } },
    });
    expect(result.diagnostics).toEqual([]);
    const lines = formatPlan(compileWorkflow(result.spec!), pc.createColors(false))
      .split("\n")
      .filter((l) => /^\s+(<-|->) /.test(l));
    expect(lines.map((l) => l.trim())).toEqual([
      "<- s3://lab/datasets  (only .*\\.csv$)",
      "-> s3://lab/runs/{{workflow_id}}  (only .*\\.txt$)",
      "<- count  (only summary)",
    ]);
  });
});

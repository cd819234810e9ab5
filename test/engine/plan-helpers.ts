/**
 * Shared by the engine tests: plans are built from YAML through the real
 * loader and compiler, so the engine is tested on what it will receive.
 */
import { expect } from "vitest";
import { compileWorkflow, type CompiledGroup, type CompiledWorkflow } from "../../src/plan/index.js";
import { loadWorkflowSpec } from "../../src/spec/index.js";

/** Strips the indentation common to every non-blank line (so YAML can be written indented in a test). */
export function dedent(text: string): string {
  const lines = text.replace(/^\n/, "").split("\n");
  const indents = lines.filter((l) => l.trim() !== "").map((l) => /^ */.exec(l)![0].length);
  const cut = Math.min(...indents);
  return lines.map((l) => l.slice(cut)).join("\n");
}

export async function compileYaml(yaml: string): Promise<CompiledWorkflow> {
  const result = await loadWorkflowSpec(dedent(yaml), { maxRetries: 5 });
  expect(result.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
  expect(result.spec).toBeDefined();
  return compileWorkflow(result.spec!);
}

export function groupNamed(plan: CompiledWorkflow, name: string): CompiledGroup {
  const found = plan.groups.find((g) => g.name === name);
  if (!found) throw new Error(`no group ${name} in ${plan.groups.map((g) => g.name).join(", ")}`);
  return found;
}

/** Where a task lives: its group's index and its own index in the group. */
export function locateTask(plan: CompiledWorkflow, name: string): { g: number; t: number } {
  for (const group of plan.groups) {
    const t = group.tasks.findIndex((task) => task.name === name);
    if (t >= 0) return { g: group.index, t };
  }
  throw new Error(`no task ${name}`);
}

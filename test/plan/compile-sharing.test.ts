/**
 * A plan of many tasks keeps what its tasks have in common once: the empty
 * lists and records most tasks have, and command words without tokens. With
 * 100,000 tasks this was ten empty arrays and a copy of `["true"]` per task
 * (tens of MB kept for the whole run). What is shared is frozen, so no task
 * can change another's.
 */
import { describe, expect, it } from "vitest";
import { compileYaml } from "../engine/plan-helpers.js";

const yaml = `
workflow:
  name: sharing
  tasks:
  - {name: a, image: alpine, command: ["true"]}
  - {name: b, image: alpine, command: ["true"], args: ["x"]}
  - {name: c, image: alpine, command: ["echo", "{{output}}"], inputs: [{task: a}]}
`;

describe("what tasks have in common is kept once", () => {
  it("empty lists and records are one frozen value for every task", async () => {
    const plan = await compileYaml(yaml);
    const [a, b] = [plan.groups[0]!.tasks[0]!, plan.groups[1]!.tasks[0]!];
    for (const field of ["files", "inputs", "outputs", "exitActions", "volumeMounts", "checkpoints"] as const) {
      expect(a[field], field).toBe(b[field]);
      expect(Object.isFrozen(a[field]), field).toBe(true);
    }
    expect(a.environment).toBe(b.environment);
    expect(a.credentials).toBe(b.credentials);
    expect(plan.groups[0]!.upstream).toBe(plan.groups[1]!.upstream);
    expect(() => (a.args as string[][]).push(["x"])).toThrow(TypeError);
    expect(b.args).toEqual([["x"]]);
  });

  it("a command word without tokens is one frozen array for every task that has it; one with tokens is the task's own", async () => {
    const plan = await compileYaml(yaml);
    const [a, b, c] = plan.groups.map((g) => g.tasks[0]!);
    expect(a!.command[0]).toEqual(["true"]);
    expect(a!.command[0]).toBe(b!.command[0]);
    expect(Object.isFrozen(a!.command[0])).toBe(true);
    expect(c!.command[1]).toEqual([{ kind: "output" }]);
    expect(c!.inputs).toEqual([{ kind: "task", task: "a", group: 0 }]);
  });
});

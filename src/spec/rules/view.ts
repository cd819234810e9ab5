/**
 * A tolerant view of the parsed document for the cross-field rules. It reads
 * whatever is there, even where the schema has found problems, so that one run
 * of `validate` reports every problem rather than the first layer of them.
 */
import type { SpecPath } from "../diagnostics.js";
import { normalizeName } from "../values.js";

export type RawMap = Record<string, unknown>;

export interface TaskView {
  name: string | undefined;
  path: SpecPath;
  group: GroupView;
  raw: RawMap;
}

export interface GroupView {
  /** Position in `WorkflowView.groups`. */
  index: number;
  name: string | undefined;
  path: SpecPath;
  /** A group made from a task of a `tasks:` workflow. */
  implicit: boolean;
  tasks: TaskView[];
  raw: RawMap;
}

export interface WorkflowView {
  raw: RawMap;
  groups: GroupView[];
  tasks: TaskView[];
  /** Tasks by normalised name (the first, where names clash). */
  byName: Map<string, TaskView>;
}

export function isMap(value: unknown): value is RawMap {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Strings, and the numbers and booleans OSMO coerces to strings. */
export function asText(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return undefined;
}

export function asList(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

export function buildView(root: unknown): WorkflowView | undefined {
  if (!isMap(root) || !isMap(root.workflow)) return undefined;
  const workflow = root.workflow;
  const view: WorkflowView = { raw: workflow, groups: [], tasks: [], byName: new Map() };
  const addTask = (group: GroupView, raw: unknown, path: SpecPath) => {
    if (!isMap(raw)) return;
    const task: TaskView = { name: asText(raw.name), path, group, raw };
    group.tasks.push(task);
    view.tasks.push(task);
    if (task.name !== undefined) {
      const key = normalizeName(task.name);
      if (!view.byName.has(key)) view.byName.set(key, task);
    }
  };
  if (Array.isArray(workflow.groups)) {
    workflow.groups.forEach((rawGroup, g) => {
      if (!isMap(rawGroup)) return;
      const path = ["workflow", "groups", g];
      const group: GroupView = { index: view.groups.length, name: asText(rawGroup.name), path, implicit: false, tasks: [], raw: rawGroup };
      view.groups.push(group);
      asList(rawGroup.tasks).forEach((rawTask, t) => addTask(group, rawTask, [...path, "tasks", t]));
    });
  } else if (Array.isArray(workflow.tasks)) {
    workflow.tasks.forEach((rawTask, t) => {
      const path = ["workflow", "tasks", t];
      const name = isMap(rawTask) ? asText(rawTask.name) : undefined;
      const group: GroupView = {
        index: view.groups.length,
        name: name === undefined ? undefined : `${name}-group`,
        path,
        implicit: true,
        tasks: [],
        raw: {},
      };
      view.groups.push(group);
      addTask(group, rawTask, path);
    });
  }
  return view;
}

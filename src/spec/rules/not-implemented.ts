/**
 * Fields troupe accepts (they are OSMO's, and its files use them) but does not
 * act on yet. Each is a warning wherever a file asks for it, so that nothing
 * accepted is ever silently ignored. This table is their one home: the rule
 * below, `docs/spec.md` (checked by a test) and the warnings all come from it.
 * A field leaves the table when troupe implements it.
 */
import type { DiagnosticBag, SpecPath } from "../diagnostics.js";
import { asList, isMap, type RawMap, type WorkflowView } from "./view.js";

/** Where in a workflow file a field lives. */
export type FieldPlace = "task" | "task input" | "task output" | "resource" | "workflow";

export interface NotImplementedField {
  place: FieldPlace;
  /** The key, as written in the file. */
  field: string;
  /** How the field is named in messages and docs (`outputs: - url:`, input `regex`). */
  label: string;
  /** What troupe does instead, for the user to know what to expect. */
  instead: string;
  /** The pools that do act on it, where some do (`instead` is then what the others do). */
  only?: string;
}

export const NOT_IMPLEMENTED: readonly NotImplementedField[] = [
  {
    place: "resource",
    field: "platform",
    label: "platform",
    only: "Kubernetes pools with platforms (their node selectors, tolerations and pod templates)",
    instead: "tasks run wherever their pool runs them",
  },
  {
    place: "resource",
    field: "nodesExcluded",
    label: "nodesExcluded",
    only: "Kubernetes pools (a node affinity keeps the pods off those nodes)",
    instead: "tasks run wherever their pool runs them",
  },
  { place: "resource", field: "topology", label: "topology", instead: "a group's tasks are placed as their pool places any" },
  {
    place: "resource",
    field: "storage",
    label: "storage",
    only: "Kubernetes pools (ephemeral-storage, requested and limited)",
    instead: "disk space is neither reserved nor limited",
  },
  {
    place: "workflow",
    field: "pool",
    label: "workflow.pool",
    instead: "the pool is the one submitted to (`troupe workflow submit --pool`, default `default`); `troupe run` runs here",
  },
];

/** A value that asks for something: present, and not `false`, an empty list or an empty mapping. */
function asksForSomething(value: unknown): boolean {
  if (value === undefined || value === null || value === false || value === "") return false;
  if (Array.isArray(value)) return value.length > 0;
  if (isMap(value)) return Object.keys(value).length > 0;
  return true;
}

function warn(bag: DiagnosticBag, entry: NotImplementedField, path: SpecPath, whose: string): void {
  const effect = entry.only ? `has an effect only on ${entry.only}; elsewhere` : "has no effect yet in troupe:";
  bag.warning("W_NOT_IMPLEMENTED", path, `\`${entry.label}\`${whose} ${effect} ${entry.instead}`, {
    atKey: true,
    hint: entry.only
      ? "troupe accepts it for OSMO's files; on other pools it is ignored"
      : "troupe accepts it for OSMO's files; remove it, or expect it to be ignored",
  });
}

/** Warns once per field per task (per resource entry, per workflow), at the first place the field asks for something. */
export function checkNotImplemented(view: WorkflowView, bag: DiagnosticBag): void {
  const byPlace = (place: FieldPlace) => NOT_IMPLEMENTED.filter((e) => e.place === place);
  const inList = (place: FieldPlace, list: unknown, listPath: SpecPath, whose: string) => {
    for (const entry of byPlace(place)) {
      const at = asList(list).findIndex((item) => isMap(item) && asksForSomething(item[entry.field]));
      if (at >= 0) warn(bag, entry, [...listPath, at, entry.field], whose);
    }
  };
  for (const entry of byPlace("workflow")) {
    if (asksForSomething(view.raw[entry.field])) warn(bag, entry, ["workflow", entry.field], "");
  }
  if (isMap(view.raw.resources)) {
    for (const [name, resource] of Object.entries(view.raw.resources)) {
      if (!isMap(resource)) continue;
      for (const entry of byPlace("resource")) {
        if (asksForSomething((resource as RawMap)[entry.field]))
          warn(bag, entry, ["workflow", "resources", name, entry.field], ` (resource \`${name}\`)`);
      }
    }
  }
  for (const task of view.tasks) {
    const whose = ` (task \`${task.name ?? "?"}\`)`;
    for (const entry of byPlace("task")) {
      if (asksForSomething(task.raw[entry.field])) warn(bag, entry, [...task.path, entry.field], whose);
    }
    inList("task input", task.raw.inputs, [...task.path, "inputs"], whose);
    inList("task output", task.raw.outputs, [...task.path, "outputs"], whose);
  }
}

/** Rules on the shape of the workflow: tasks or groups, leads, names. */
import { didYouMean } from "../../util/suggest.js";
import type { DiagnosticBag } from "../diagnostics.js";
import { RESERVED_NAMES, normalizeName } from "../values.js";
import { asText, type WorkflowView } from "./view.js";

export function checkTasksOrGroups(view: WorkflowView, bag: DiagnosticBag): void {
  const { tasks, groups } = view.raw;
  const present = (v: unknown) => v !== undefined && v !== null;
  if (present(tasks) && present(groups)) {
    bag.error("E_TASKS_AND_GROUPS", ["workflow", "groups"], "a workflow has either `tasks` or `groups`, not both", {
      hint: "put independent tasks in groups of their own, or drop `groups`",
      atKey: true,
    });
  } else if (!present(tasks) && !present(groups)) {
    bag.error("E_NO_TASKS", ["workflow"], "the workflow has neither `tasks` nor `groups`", { hint: "add a `tasks:` list" });
  } else if (Array.isArray(tasks) && tasks.length === 0) {
    bag.error("E_NO_TASKS", ["workflow", "tasks"], "`tasks` is empty");
  } else if (Array.isArray(groups) && groups.length === 0) {
    bag.error("E_NO_TASKS", ["workflow", "groups"], "`groups` is empty");
  }
}

export function checkLeads(view: WorkflowView, bag: DiagnosticBag): void {
  for (const group of view.groups) {
    if (group.implicit || group.tasks.length < 2) continue;
    const leads = group.tasks.filter((t) => t.raw.lead === true);
    if (leads.length === 0) {
      bag.error("E_NO_LEAD", [...group.path, "tasks"], `group \`${group.name ?? "?"}\` has ${group.tasks.length} tasks and no lead`, {
        hint: `mark exactly one with \`lead: true\` (for example \`${group.tasks[0]?.name ?? "its first task"}\`)`,
      });
    } else if (leads.length > 1) {
      for (const extra of leads.slice(1)) {
        bag.error(
          "E_MULTIPLE_LEADS",
          [...extra.path, "lead"],
          `group \`${group.name ?? "?"}\` has ${leads.length} leads (${leads.map((t) => t.name).join(", ")}); exactly one is allowed`,
        );
      }
    }
  }
}

/** Names of tasks and groups share one namespace, compared case-insensitively with `_` = `-`. */
export function checkNames(view: WorkflowView, bag: DiagnosticBag): void {
  const seen = new Map<string, { name: string; what: string; path: readonly (string | number)[] }>();
  const visit = (name: string | undefined, path: readonly (string | number)[], what: string) => {
    if (name === undefined) return;
    const key = normalizeName(name);
    if (RESERVED_NAMES.includes(key)) {
      bag.error("E_RESERVED_NAME", [...path, "name"], `${what} name \`${name}\` is reserved`);
      return;
    }
    const earlier = seen.get(key);
    if (earlier) {
      const same = earlier.name === name ? "" : ` (names are compared ignoring case, with \`_\` equal to \`-\`)`;
      bag.error(
        "E_DUPLICATE_NAME",
        [...path, "name"],
        `${what} name \`${name}\` is already used by ${earlier.what} \`${earlier.name}\` at {at}${same}`,
        { related: [...earlier.path, "name"] },
      );
      return;
    }
    seen.set(key, { name, what, path });
  };
  for (const group of view.groups) {
    if (!group.implicit) visit(group.name, group.path, "group");
    for (const task of group.tasks) visit(task.name, task.path, "task");
  }
}

/** `resource:` must name an entry of `workflow.resources` (`default` always exists). */
export function checkResourceNames(view: WorkflowView, bag: DiagnosticBag): void {
  const resources = view.raw.resources;
  const defined = new Set(["default", ...(typeof resources === "object" && resources !== null ? Object.keys(resources) : [])]);
  for (const task of view.tasks) {
    const name = asText(task.raw.resource);
    if (name === undefined || defined.has(name)) continue;
    bag.error(
      "E_UNKNOWN_RESOURCE",
      [...task.path, "resource"],
      `task \`${task.name ?? "?"}\` uses resource \`${name}\`, which \`workflow.resources\` does not define`,
      {
        hint: (budget) => didYouMean(name, defined, undefined, budget) ?? `defined: ${[...defined].join(", ")}`,
      },
    );
  }
}

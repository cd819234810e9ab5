/** Data dependencies: every `inputs: - task:` names a task of another group, without cycles. */
import { findCycle } from "../../util/graph.js";
import { didYouMean } from "../../util/suggest.js";
import type { DiagnosticBag } from "../diagnostics.js";
import { normalizeName } from "../values.js";
import { asList, asText, isMap, type GroupView, type TaskView, type WorkflowView } from "./view.js";

/** A `task:` input that refers to another workflow's task (`WORKFLOW_ID:NAME`). */
export function isForeignTaskRef(ref: string): boolean {
  return ref.includes(":");
}

export function checkInputs(view: WorkflowView, bag: DiagnosticBag): void {
  const byName = new Map<string, TaskView>();
  for (const task of view.tasks)
    if (task.name !== undefined && !byName.has(normalizeName(task.name))) byName.set(normalizeName(task.name), task);
  const groupIndex = new Map<GroupView, number>(view.groups.map((g, i) => [g, i]));
  const edges: Array<Set<number>> = view.groups.map(() => new Set());
  // For the cycle message: which task made each group edge.
  const edgeCause = new Map<string, { from: TaskView; to: TaskView }>();

  for (const task of view.tasks) {
    asList(task.raw.inputs).forEach((input, i) => {
      const path = [...task.path, "inputs", i];
      if (!isMap(input)) return;
      const ref = asText(input.task);
      const hasUrl = input.url !== undefined;
      if ((ref === undefined) === !hasUrl) {
        bag.error("E_INPUT_SOURCE", path, "an input needs exactly one of `task` and `url`");
        return;
      }
      if (ref === undefined || isForeignTaskRef(ref)) return;
      const upstream = byName.get(normalizeName(ref));
      if (!upstream) {
        bag.error(
          "E_UNKNOWN_INPUT_TASK",
          [...path, "task"],
          `task \`${task.name ?? "?"}\` takes input from \`${ref}\`, which is not a task of this workflow`,
          {
            hint: didYouMean(
              ref,
              view.tasks.flatMap((t) => (t.name === undefined ? [] : [t.name])),
            ),
          },
        );
        return;
      }
      if (upstream.group === task.group) {
        const self = upstream === task;
        bag.error(
          "E_INPUT_SAME_GROUP",
          [...path, "task"],
          self
            ? `task \`${task.name ?? "?"}\` takes input from itself`
            : `task \`${task.name ?? "?"}\` takes input from \`${ref}\`, a task of its own group \`${task.group.name ?? "?"}\``,
          {
            hint: self ? undefined : "members of a group run at the same time; talk over the network with {{host:TASK}} instead",
          },
        );
        return;
      }
      const from = groupIndex.get(upstream.group) as number;
      const to = groupIndex.get(task.group) as number;
      edges[from]?.add(to);
      if (!edgeCause.has(`${from}>${to}`)) edgeCause.set(`${from}>${to}`, { from: upstream, to: task });
    });
  }

  const cycle = findCycle(edges.map((s) => [...s]));
  if (cycle) {
    const label = (g: GroupView | undefined) => (g?.implicit ? g.tasks[0]?.name : g?.name) ?? "?";
    const names = cycle.map((g) => label(view.groups[g]));
    const first = edgeCause.get(`${cycle[0]}>${cycle[1]}`);
    const steps = cycle
      .slice(0, -1)
      .map((g, i) => edgeCause.get(`${g}>${cycle[i + 1]}`))
      .map((c) => `${c?.to.name} <- ${c?.from.name}`);
    bag.error(
      "E_DEPENDENCY_CYCLE",
      first ? [...first.to.path, "inputs"] : ["workflow"],
      `dependency cycle: ${names.join(" -> ")} (each feeds the next)`,
      {
        hint: `inputs along the cycle: ${steps.join(", ")}`,
      },
    );
  }
}

/** Data dependencies: every `inputs: - task:` names a task of another group, without cycles. */
import { findCycle } from "../../util/graph.js";
import { didYouMean } from "../../util/suggest.js";
import type { DiagnosticBag } from "../diagnostics.js";
import { normalizeName } from "../values.js";
import { asText, isMap, type GroupView, type TaskView, type WorkflowView } from "./view.js";

/** A `task:` input that refers to another workflow's task (`WORKFLOW_ID:NAME`). */
export function isForeignTaskRef(ref: string): boolean {
  return ref.includes(":");
}

export function checkInputs(view: WorkflowView, bag: DiagnosticBag): void {
  const byName = view.byName;
  const edges: number[][] = view.groups.map(() => []);
  // For the cycle message: which tasks made each group edge (keyed from * groups + to).
  const edgeCause = new Map<number, { from: TaskView; to: TaskView }>();
  const edgeKey = (from: number, to: number) => from * view.groups.length + to;
  let names: string[] | undefined;
  const taskNames = () => (names ??= view.tasks.flatMap((t) => (t.name === undefined ? [] : [t.name])));

  for (const task of view.tasks) {
    const inputs = task.raw.inputs;
    if (!Array.isArray(inputs)) continue;
    inputs.forEach((input, i) => {
      if (!isMap(input)) return;
      const path = () => [...task.path, "inputs", i];
      const ref = asText(input.task);
      const hasUrl = input.url !== undefined;
      // A `dataset:` (OSMO's) is an unknown field, said once with what to use instead (schema-issues.ts).
      if (ref === undefined && !hasUrl && input.dataset !== undefined) return;
      if ((ref === undefined) === !hasUrl) {
        bag.error("E_INPUT_SOURCE", path(), "an input needs exactly one of `task` and `url`");
        return;
      }
      if (ref === undefined || isForeignTaskRef(ref)) return;
      const upstream = byName.get(normalizeName(ref));
      if (!upstream) {
        bag.error(
          "E_UNKNOWN_INPUT_TASK",
          [...path(), "task"],
          `task \`${task.name ?? "?"}\` takes input from \`${ref}\`, which is not a task of this workflow`,
          {
            hint: (budget) => didYouMean(ref, taskNames(), undefined, budget),
          },
        );
        return;
      }
      if (upstream.group === task.group) {
        const self = upstream === task;
        bag.error(
          "E_INPUT_SAME_GROUP",
          [...path(), "task"],
          self
            ? `task \`${task.name ?? "?"}\` takes input from itself`
            : `task \`${task.name ?? "?"}\` takes input from \`${ref}\`, a task of its own group \`${task.group.name ?? "?"}\``,
          {
            hint: self ? undefined : "members of a group run at the same time; talk over the network with {{host:TASK}} instead",
          },
        );
        return;
      }
      const from = upstream.group.index;
      const to = task.group.index;
      const key = edgeKey(from, to);
      if (!edgeCause.has(key)) {
        edgeCause.set(key, { from: upstream, to: task });
        edges[from]?.push(to);
      }
    });
  }

  const cycle = findCycle(edges);
  if (cycle) {
    const label = (g: GroupView | undefined) => (g?.implicit ? g.tasks[0]?.name : g?.name) ?? "?";
    const names = cycle.map((g) => label(view.groups[g]));
    const first = edgeCause.get(edgeKey(cycle[0] as number, cycle[1] as number));
    const steps = cycle
      .slice(0, -1)
      .map((g, i) => edgeCause.get(edgeKey(g, cycle[i + 1] as number)))
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

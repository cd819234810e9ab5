/** Where each group goes: ELK's layered layout, left to right, computed in a worker (off the page's thread). */
import ELK from "elkjs/lib/elk-api.js";
import elkWorkerUrl from "elkjs/lib/elk-worker.min.js?url";
import type { GroupEdge } from "./edges";

export const NODE_WIDTH = 240;
const HEADER = 34;
const TASK_LINE = 22;
/** A group with more tasks lists this many and says how many more. */
export const TASKS_SHOWN = 8;

export function nodeHeight(tasks: number): number {
  return HEADER + TASK_LINE * (Math.min(tasks, TASKS_SHOWN) + (tasks > TASKS_SHOWN ? 1 : 0)) + 10;
}

let elk: InstanceType<typeof ELK> | undefined;

export async function layoutGroups(
  groups: { name: string; tasks: number }[],
  edges: GroupEdge[],
): Promise<Map<string, { x: number; y: number }>> {
  elk ??= new ELK({ workerUrl: elkWorkerUrl });
  const laid = await elk.layout({
    id: "workflow",
    layoutOptions: {
      "elk.algorithm": "layered",
      "elk.direction": "RIGHT",
      "elk.spacing.nodeNode": "24",
      "elk.layered.spacing.nodeNodeBetweenLayers": "64",
    },
    children: groups.map((g) => ({ id: g.name, width: NODE_WIDTH, height: nodeHeight(g.tasks) })),
    edges: edges.map((e, i) => ({ id: `e${i}`, sources: [e.from], targets: [e.to] })),
  });
  return new Map((laid.children ?? []).map((child) => [child.id, { x: child.x ?? 0, y: child.y ?? 0 }]));
}

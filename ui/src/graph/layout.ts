/**
 * Where each group goes, computed in a worker (off the page's thread): ELK's layered layout, left to right, for
 * graphs it lays out in well under a second; above ELK_LIMIT groups, a layered layout linear in the graph's size
 * (layered.ts, in its own worker), since ELK takes seconds at 1,000 groups.
 */
import ELK from "elkjs/lib/elk-api.js";
import elkWorkerUrl from "elkjs/lib/elk-worker.min.js?url";
import type { GroupEdge } from "./edges";
import type { LayeredInput } from "./layered";
// Inlined (a blob: worker), as the edges' worker: no request to a server busy sending the workflow's events.
import LayeredWorker from "./layered-worker.ts?worker&inline";

export const NODE_WIDTH = 240;
const HEADER = 34;
const TASK_LINE = 22;
/** A group with more tasks lists this many and says how many more. */
export const TASKS_SHOWN = 8;
/** Up to this many groups, ELK lays the graph out (about 0.3 s at 100 groups, 3 s at 1,000 here). */
export const ELK_LIMIT = 150;
const GAP = 24;
const LAYER_GAP = 64;

export function nodeHeight(tasks: number): number {
  return HEADER + TASK_LINE * (Math.min(tasks, TASKS_SHOWN) + (tasks > TASKS_SHOWN ? 1 : 0)) + 10;
}

type Positions = Map<string, { x: number; y: number }>;

let elk: InstanceType<typeof ELK> | undefined;

export async function layoutGroups(groups: { name: string; tasks: number }[], edges: GroupEdge[]): Promise<Positions> {
  return groups.length > ELK_LIMIT ? layoutLayered(groups, edges) : layoutWithElk(groups, edges);
}

async function layoutWithElk(groups: { name: string; tasks: number }[], edges: GroupEdge[]): Promise<Positions> {
  elk ??= new ELK({ workerUrl: elkWorkerUrl });
  const laid = await elk.layout({
    id: "workflow",
    layoutOptions: {
      "elk.algorithm": "layered",
      "elk.direction": "RIGHT",
      "elk.spacing.nodeNode": String(GAP),
      "elk.layered.spacing.nodeNodeBetweenLayers": String(LAYER_GAP),
    },
    children: groups.map((g) => ({ id: g.name, width: NODE_WIDTH, height: nodeHeight(g.tasks) })),
    edges: edges.map((e, i) => ({ id: `e${i}`, sources: [e.from], targets: [e.to] })),
  });
  return new Map((laid.children ?? []).map((child) => [child.id, { x: child.x ?? 0, y: child.y ?? 0 }]));
}

/** One worker per layout: big graphs are laid out once per page (the layout does not change with statuses). */
function layoutLayered(groups: { name: string; tasks: number }[], edges: GroupEdge[]): Promise<Positions> {
  const worker = new LayeredWorker();
  const input: LayeredInput = {
    groups: groups.map((g) => ({ name: g.name, height: nodeHeight(g.tasks) })),
    edges,
    width: NODE_WIDTH,
    gap: GAP,
    layerGap: LAYER_GAP,
  };
  return new Promise<Positions>((resolve, reject) => {
    worker.onmessage = (event: MessageEvent<[string, { x: number; y: number }][]>) => resolve(new Map(event.data));
    worker.onerror = (event) => reject(new Error(event.message || "the layout worker failed"));
    worker.postMessage(input);
  }).finally(() => worker.terminate());
}

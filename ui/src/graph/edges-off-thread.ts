/** The group edges (edges.ts), read in a worker when the spec is big enough to hold up the page. */
import { groupEdges, type GroupEdge, type GroupShape } from "./edges";
// Inlined in the page's script (a blob: worker, which the Content-Security-Policy allows): no request to a server
// that may be busy sending the workflow's events when the page asks for it.
import EdgesWorker from "./edges-worker.ts?worker&inline";

/** Up to this many characters of spec, the edges are read in the page: a worker's start costs more. */
const IN_PAGE_LIMIT = 50_000;

export function readGroupEdges(record: GroupShape, spec: string): Promise<GroupEdge[]> {
  if (spec.length <= IN_PAGE_LIMIT) return Promise.resolve(groupEdges(record, spec));
  const worker = new EdgesWorker();
  const shape: GroupShape = { groups: record.groups.map((g) => ({ name: g.name, tasks: g.tasks.map((t) => ({ name: t.name })) })) };
  return new Promise<GroupEdge[]>((resolve, reject) => {
    worker.onmessage = (event: MessageEvent<GroupEdge[]>) => resolve(event.data);
    worker.onerror = (event) => reject(new Error(event.message || "the edges worker failed"));
    worker.postMessage({ record: shape, spec });
  }).finally(() => worker.terminate());
}

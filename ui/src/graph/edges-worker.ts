/** The group edges of a big spec (edges.ts) read in a Web Worker: parsing YAML of 10,000 tasks takes a while. */
import { groupEdges, type GroupEdge, type GroupShape } from "./edges";

const scope = globalThis as unknown as {
  onmessage: ((event: { data: { record: GroupShape; spec: string } }) => void) | null;
  postMessage(message: GroupEdge[]): void;
};

scope.onmessage = (event) => scope.postMessage(groupEdges(event.data.record, event.data.spec));

/** The layered layout (layered.ts) in a Web Worker: a big graph is laid out off the page's thread. */
import { layeredLayout, type LayeredInput } from "./layered";

const scope = globalThis as unknown as {
  onmessage: ((event: { data: LayeredInput }) => void) | null;
  postMessage(message: [string, { x: number; y: number }][]): void;
};

scope.onmessage = (event) => scope.postMessage([...layeredLayout(event.data)]);

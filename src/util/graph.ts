/**
 * Directed graphs over nodes 0..n-1 given as adjacency lists (edge u -> v:
 * v depends on u, or u must come first). Iterative, so a chain of 100,000
 * nodes does not overflow the stack.
 */

/** A cycle as the list of nodes along it (first node repeated at the end), or undefined. */
export function findCycle(adjacency: ReadonlyArray<ReadonlyArray<number>>): number[] | undefined {
  const n = adjacency.length;
  const state = new Uint8Array(n); // 0 new, 1 on the stack, 2 done
  const parent = new Int32Array(n).fill(-1);
  const nextEdge = new Uint32Array(n);
  for (let start = 0; start < n; start++) {
    if (state[start] !== 0) continue;
    const stack = [start];
    state[start] = 1;
    while (stack.length > 0) {
      const u = stack[stack.length - 1] as number;
      const edges = adjacency[u] as ReadonlyArray<number>;
      const i = nextEdge[u] as number;
      if (i < edges.length) {
        nextEdge[u] = i + 1;
        const v = edges[i] as number;
        if (state[v] === 0) {
          state[v] = 1;
          parent[v] = u;
          stack.push(v);
        } else if (state[v] === 1) {
          const cycle = [v];
          for (let w = u; w !== v; w = parent[w] as number) cycle.push(w);
          cycle.push(v);
          return cycle.reverse();
        }
      } else {
        state[u] = 2;
        stack.pop();
      }
    }
  }
  return undefined;
}

/** Kahn's order; among nodes ready together, lower numbers first (the file's order). Undefined on a cycle. */
export function topologicalOrder(adjacency: ReadonlyArray<ReadonlyArray<number>>): number[] | undefined {
  const n = adjacency.length;
  const indegree = new Uint32Array(n);
  for (const edges of adjacency) for (const v of edges) indegree[v] = (indegree[v] as number) + 1;
  const heap = new MinHeap();
  for (let u = 0; u < n; u++) if (indegree[u] === 0) heap.push(u);
  const order: number[] = [];
  while (heap.size > 0) {
    const u = heap.pop();
    order.push(u);
    for (const v of adjacency[u] as ReadonlyArray<number>) {
      indegree[v] = (indegree[v] as number) - 1;
      if (indegree[v] === 0) heap.push(v);
    }
  }
  return order.length === n ? order : undefined;
}

class MinHeap {
  private readonly items: number[] = [];
  get size(): number {
    return this.items.length;
  }
  push(value: number): void {
    const a = this.items;
    a.push(value);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if ((a[p] as number) <= value) break;
      a[i] = a[p] as number;
      i = p;
    }
    a[i] = value;
  }
  pop(): number {
    const a = this.items;
    const top = a[0] as number;
    const last = a.pop() as number;
    if (a.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= a.length) break;
        const r = l + 1;
        const c = r < a.length && (a[r] as number) < (a[l] as number) ? r : l;
        if ((a[c] as number) >= last) break;
        a[i] = a[c] as number;
        i = c;
      }
      a[i] = last;
    }
    return top;
  }
}

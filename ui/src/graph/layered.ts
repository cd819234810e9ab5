/**
 * A layered layout that costs time in proportion to the graph (groups + edges), for graphs too big for ELK to
 * lay out in time (ELK takes seconds for 1,000 groups on these machines: bench/README.md, "The web UI at scale").
 * Each group goes in the layer after its furthest upstream group (longest path), left to right as ELK's; within a
 * layer, groups are ordered by where their upstream groups are (one barycentre pass), then stacked.
 * Pure: run in a worker (layered-worker.ts), and tested on its own.
 */
export interface LayeredInput {
  groups: { name: string; height: number }[];
  edges: { from: string; to: string }[];
  width: number;
  /** Between groups of a layer, and between layers. */
  gap: number;
  layerGap: number;
}

export function layeredLayout({ groups, edges, width, gap, layerGap }: LayeredInput): Map<string, { x: number; y: number }> {
  const index = new Map(groups.map((g, i) => [g.name, i]));
  const upstream: number[][] = groups.map(() => []);
  const downstream: number[][] = groups.map(() => []);
  const waiting = new Array<number>(groups.length).fill(0);
  for (const edge of edges) {
    const from = index.get(edge.from);
    const to = index.get(edge.to);
    if (from === undefined || to === undefined || from === to) continue;
    upstream[to]!.push(from);
    downstream[from]!.push(to);
    waiting[to]! += 1;
  }
  // Kahn's order; a group on a cycle (which a valid spec cannot have) keeps layer 0 rather than being lost.
  const layer = new Array<number>(groups.length).fill(0);
  const ready = groups.map((_, i) => i).filter((i) => waiting[i] === 0);
  for (let next = 0; next < ready.length; next += 1) {
    const at = ready[next]!;
    for (const down of downstream[at]!) {
      layer[down] = Math.max(layer[down]!, layer[at]! + 1);
      if ((waiting[down]! -= 1) === 0) ready.push(down);
    }
  }
  const layers: number[][] = [];
  groups.forEach((_, i) => (layers[layer[i]!] ??= []).push(i));
  // Each group's place within its layer, as a fraction: upstream groups' mean place decides the order downstream.
  const place = new Array<number>(groups.length).fill(0);
  const positions = new Map<string, { x: number; y: number }>();
  layers.forEach((members, depth) => {
    const key = (i: number) =>
      upstream[i]!.length === 0 ? i / groups.length : upstream[i]!.reduce((sum, u) => sum + place[u]!, 0) / upstream[i]!.length;
    const ordered =
      depth === 0
        ? members
        : members
            .map((i) => [key(i), i] as const)
            .sort((a, b) => a[0] - b[0])
            .map(([, i]) => i);
    let y = 0;
    ordered.forEach((i, k) => {
      place[i] = k / ordered.length;
      positions.set(groups[i]!.name, { x: depth * (width + layerGap), y });
      y += groups[i]!.height + gap;
    });
  });
  return positions;
}

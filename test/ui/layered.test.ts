/** The layered layout of big graphs (ui/src/graph/layered.ts): layers by longest path, stacked without overlap. */
import { describe, expect, it } from "vitest";
import { layeredLayout } from "../../ui/src/graph/layered.js";

const layout = (groups: string[], edges: [string, string][]) =>
  layeredLayout({
    groups: groups.map((name) => ({ name, height: 50 })),
    edges: edges.map(([from, to]) => ({ from, to })),
    width: 100,
    gap: 10,
    layerGap: 20,
  });

describe("layeredLayout", () => {
  it("puts each group one layer after its furthest upstream group", () => {
    // a -> b -> c, and a -> c directly: c goes after b, not beside it.
    const at = layout(
      ["a", "b", "c", "d"],
      [
        ["a", "b"],
        ["b", "c"],
        ["a", "c"],
      ],
    );
    expect(at.get("a")).toEqual({ x: 0, y: 0 });
    expect(at.get("b")!.x).toBe(120);
    expect(at.get("c")!.x).toBe(240);
    // d has no edges: the first layer, under a.
    expect(at.get("d")).toEqual({ x: 0, y: 60 });
  });

  it("orders a layer by where its upstream groups are, so edges do not cross", () => {
    // top -> low-down, bottom -> high-down (given in the other order): each follows its upstream group.
    const at = layout(
      ["top", "bottom", "under-bottom", "under-top"],
      [
        ["bottom", "under-bottom"],
        ["top", "under-top"],
      ],
    );
    expect(at.get("under-top")!.y).toBeLessThan(at.get("under-bottom")!.y);
  });

  it("lays out a chain of 10,000 groups in linear time, and keeps a group on a cycle rather than losing it", () => {
    const names = Array.from({ length: 10_000 }, (_, i) => `g${i}`);
    const started = performance.now();
    const at = layout(
      names,
      names.slice(1).map((name, i) => [names[i]!, name]),
    );
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(at.get("g9999")!.x).toBe(9_999 * 120);
    const cyclic = layout(
      ["x", "y"],
      [
        ["x", "y"],
        ["y", "x"],
      ],
    );
    expect([...cyclic.keys()].sort()).toEqual(["x", "y"]);
  });
});

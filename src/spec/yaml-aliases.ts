/**
 * What aliases make of a document, measured on its nodes before any value is
 * built: how deep they nest (a chain of anchors, each holding the one before,
 * nests without bound), how many nodes they add (billion laughs: nine
 * anchors of ten aliases each make 10^9), and whether one lies inside the node
 * it names (a value that holds itself). Each node is walked once (the
 * height and size of anchored nodes are kept), and the walk is bounded by the
 * nesting limit already checked on the tokens.
 */
import { isAlias, isMap, isScalar, isSeq, type Alias, type Document, type Node } from "yaml";

/** Nodes nested deeper than this are refused (js-yaml's own limit, so both readers agree). */
export const MAX_YAML_DEPTH = 100;
/** Aliases may add this many nodes, or ten times the nodes written if that is more. */
export const MIN_ALIAS_EXPANSION = 2_000_000;

export type AliasProblem = { problem: "depth" | "cycle"; alias: Alias } | { problem: "size"; alias: Alias; limit: number };

export function checkAliases(doc: Document.Parsed): AliasProblem | undefined {
  const first = walk(doc, Infinity);
  if (first.cycle) return { problem: "cycle", alias: first.cycle };
  if (first.deep) return { problem: "depth", alias: first.deep };
  const limit = Math.max(MIN_ALIAS_EXPANSION, 10 * first.written);
  if (first.added <= limit) return undefined;
  const second = walk(doc, limit);
  return second.big ? { problem: "size", alias: second.big, limit } : undefined;
}

interface Walk {
  written: number;
  added: number;
  /** The first alias whose expansion nests too deep. */
  deep?: Alias;
  /** The first alias inside the node it names. */
  cycle?: Alias;
  /** The alias at which the nodes added pass `limit`. */
  big?: Alias;
}

function walk(doc: Document.Parsed, limit: number): Walk {
  const anchors = new Map<string, Node>();
  const measured = new Map<unknown, [height: number, size: number]>();
  const open = new Set<unknown>();
  const result: Walk = { written: 0, added: 0 };
  const measure = (node: unknown, depth: number): [number, number] => {
    if (result.deep !== undefined || result.cycle !== undefined || node === null || node === undefined) return [0, 0];
    if (isAlias(node)) {
      const source = anchors.get(node.source);
      if (open.has(source)) result.cycle = node;
      const [height, size] = measured.get(source) ?? [1, 1];
      if (depth - 1 + height > MAX_YAML_DEPTH) result.deep = node;
      result.added += size;
      if (result.added > limit && result.big === undefined) result.big = node;
      return [height, size];
    }
    result.written++;
    const anchor = (node as { anchor?: string }).anchor;
    if (anchor) {
      anchors.set(anchor, node as Node);
      open.add(node);
    }
    let height = 1;
    let size = 1;
    const add = ([h, s]: [number, number], levels: number) => {
      height = Math.max(height, h + levels);
      size += s;
    };
    if (isMap(node)) {
      for (const pair of node.items) {
        if (isScalar(pair.key) && typeof pair.key.value === "symbol") {
          // A merge puts its sources' entries into this mapping, at this level.
          for (const source of isSeq(pair.value) ? pair.value.items : [pair.value]) add(measure(source, depth), 0);
        } else {
          add(measure(pair.key, depth + 1), 1);
          add(measure(pair.value, depth + 1), 1);
        }
      }
    } else if (isSeq(node)) {
      for (const item of node.items) add(measure(item, depth + 1), 1);
    }
    if (anchor) {
      measured.set(node, [height, size]);
      open.delete(node);
    }
    return [height, size];
  };
  measure(doc.contents, 1);
  return result;
}

/**
 * YAML text -> plain value, with source positions on demand.
 *
 * Two readers, one meaning (YAML 1.2 core schema plus merge keys):
 * - js-yaml loads ordinary files fast (a 100,000-task file in about a second);
 * - the careful reader (yaml-careful.ts: the `yaml` package, which keeps every
 *   node's position) reads every file that needs care (syntax errors, duplicate
 *   keys, anchors and aliases, merge keys, tags, explicit or collection keys)
 *   and, lazily, locates diagnostics. Valid files never pay for positions.
 * The fast reader (yaml-fast.ts) gives the careful reader's value or declines,
 * and the file is read carefully (test/spec/yaml-differential.test.ts).
 */
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node, type Pair, type YAMLMap } from "yaml";
import type { DiagnosticBag, SpecPath } from "./diagnostics.js";
import { CAREFUL_OPTIONS, readCarefully } from "./yaml-careful.js";
import { DECLINED, FAST_OPTIONS, readFast } from "./yaml-fast.js";
import { PositionIndex } from "./yaml-positions.js";

export { MAX_YAML_DEPTH } from "./yaml-careful.js";

export interface Position {
  line: number;
  column: number;
}

export class SourceLocator {
  private doc: Document.Parsed | undefined;
  private readonly lines = new LineCounter();
  /** For files js-yaml read: positions from a second js-yaml pass (null once it failed). */
  private positions: PositionIndex | null | undefined;
  /** How far the file was read for `positions`. */
  private positionsUpTo = 0;
  /** Each mapping's pairs by key, built when first walked through (the last pair wins). */
  private readonly pairsByKey = new WeakMap<YAMLMap, Map<string, Pair>>();

  constructor(
    private readonly text: string,
    doc?: Document.Parsed,
    lineCounter?: LineCounter,
    /** What js-yaml loaded from `text`, where it did (positions then come from js-yaml too). */
    private readonly loaded?: unknown,
  ) {
    this.doc = doc;
    if (doc || loaded === undefined) this.positions = null;
    if (lineCounter) this.lines = lineCounter;
  }

  /** Where the node at `path` starts; the deepest existing ancestor when it does not exist. */
  locate(path: SpecPath, atKey = false): Position {
    return this.locateWithin(path, atKey, Infinity) as Position;
  }

  /**
   * As `locate`, reading the file no further than needed to place nodes that
   * start up to offset `within`: undefined for a node that starts past it
   * (and so after every node placed).
   */
  locateWithin(path: SpecPath, atKey: boolean, within: number): Position | undefined {
    if (this.positions !== null) {
      if (this.positions === undefined || this.positionsUpTo < within) {
        this.positions = PositionIndex.build(this.text, FAST_OPTIONS, this.loaded, within) ?? null;
        this.positionsUpTo = within;
      }
      const fast = this.positions?.locate(path, atKey);
      if (fast === "beyond") return undefined;
      if (fast !== undefined && fast !== "fallback") return fast;
    }
    const doc = this.document();
    let node: unknown = doc.contents;
    let offset = rangeStart(node) ?? 0;
    // The key that introduced the current node: a field missing from a mapping is reported there.
    let keyOffset: number | undefined;
    for (let i = 0; i < path.length; i++) {
      const segment = path[i];
      const last = i === path.length - 1;
      if (isMap(node)) {
        const pair = this.pairOf(node, String(segment));
        if (!pair) {
          if (last && keyOffset !== undefined) offset = keyOffset;
          break;
        }
        keyOffset = rangeStart(pair.key);
        if (last && atKey) {
          offset = rangeStart(pair.key) ?? offset;
          break;
        }
        node = pair.value;
        offset = rangeStart(node) ?? rangeStart(pair.key) ?? offset;
      } else if (isSeq(node) && typeof segment === "number") {
        node = node.items[segment];
        if (node === undefined) break;
        keyOffset = undefined;
        offset = rangeStart(node) ?? offset;
      } else {
        break;
      }
    }
    const pos = this.lines.linePos(offset);
    return { line: pos.line, column: pos.col };
  }

  private pairOf(map: YAMLMap, key: string): Pair | undefined {
    let byKey = this.pairsByKey.get(map);
    if (!byKey) {
      byKey = new Map();
      for (const pair of map.items) if (isScalar(pair.key)) byKey.set(String(pair.key.value), pair);
      this.pairsByKey.set(map, byKey);
    }
    return byKey.get(key);
  }

  private document(): Document.Parsed {
    if (!this.doc) this.doc = parseDocument(this.text, { ...CAREFUL_OPTIONS, lineCounter: this.lines, keepSourceTokens: false });
    return this.doc;
  }
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as { range?: [number, number, number] } | null)?.range;
  return range ? range[0] : undefined;
}

export interface YamlResult {
  value: unknown;
  locator: SourceLocator;
}

/** Parse YAML text, reporting syntax errors (all of them) and duplicate keys into `bag`. */
export function parseYaml(text: string, bag: DiagnosticBag): YamlResult | undefined {
  const value = readFast(text);
  if (value !== DECLINED) return { value, locator: new SourceLocator(text, undefined, undefined, value) };
  const read = readCarefully(text, bag);
  if (!read) return undefined;
  reportDuplicateKeys(read.doc, read.lines, bag);
  return { value: read.value, locator: new SourceLocator(text, read.doc, read.lines) };
}

function reportDuplicateKeys(doc: Document.Parsed, lineCounter: LineCounter, bag: DiagnosticBag): void {
  visit(doc, {
    Map(_key, map, ancestors) {
      const seen = new Set<string>();
      for (const pair of map.items) {
        if (!isPair(pair) || !isScalar(pair.key)) continue;
        if (typeof pair.key.value === "symbol") continue; // merge keys
        const key = String(pair.key.value);
        if (seen.has(key)) {
          const start = rangeStart(pair.key) ?? 0;
          const pos = lineCounter.linePos(start);
          bag.warning("W_DUPLICATE_KEY", [...pathOf([...ancestors, map]), key], `duplicate key \`${key}\`: the last value wins`, {
            position: { line: pos.line, column: pos.col },
            space: "rendered",
          });
        }
        seen.add(key);
      }
    },
  });
}

/** The spec path of a node from the ancestors `visit` passes. */
function pathOf(ancestors: readonly unknown[]): Array<string | number> {
  const path: Array<string | number> = [];
  for (let i = 0; i < ancestors.length; i++) {
    const node = ancestors[i];
    const child = ancestors[i + 1];
    if (isPair(node) && isScalar(node.key)) path.push(String(node.key.value));
    else if (isSeq(node) && child !== undefined) path.push(node.items.indexOf(child as Node));
  }
  return path;
}

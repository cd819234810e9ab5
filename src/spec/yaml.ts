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
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node } from "yaml";
import type { DiagnosticBag, SpecPath } from "./diagnostics.js";
import { CAREFUL_OPTIONS, readCarefully } from "./yaml-careful.js";
import { DECLINED, readFast } from "./yaml-fast.js";

export { MAX_YAML_DEPTH } from "./yaml-careful.js";

export interface Position {
  line: number;
  column: number;
}

export class SourceLocator {
  private doc: Document.Parsed | undefined;
  private readonly lines = new LineCounter();

  constructor(
    private readonly text: string,
    doc?: Document.Parsed,
    lineCounter?: LineCounter,
  ) {
    this.doc = doc;
    if (lineCounter) this.lines = lineCounter;
  }

  /** Where the node at `path` starts; the deepest existing ancestor when it does not exist. */
  locate(path: SpecPath, atKey = false): Position {
    const doc = this.document();
    let node: unknown = doc.contents;
    let offset = rangeStart(node) ?? 0;
    // The key that introduced the current node: a field missing from a mapping is reported there.
    let keyOffset: number | undefined;
    for (let i = 0; i < path.length; i++) {
      const segment = path[i];
      const last = i === path.length - 1;
      if (isMap(node)) {
        const pair = [...node.items].reverse().find((p) => isScalar(p.key) && String(p.key.value) === String(segment));
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
  if (value !== DECLINED) return { value, locator: new SourceLocator(text) };
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

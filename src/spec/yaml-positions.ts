/**
 * Source positions for files js-yaml read, from a second js-yaml pass with a
 * listener: where every node starts, which nodes are mapping keys, and the
 * tree they form, kept in flat typed arrays (a 10 MB file has millions of
 * nodes; objects per node would cost more in garbage collection than the
 * parse). Linear in the file: the `yaml` package, which keeps a node tree with
 * positions, takes over ten times longer on a 10 MB file. It runs only when a
 * diagnostic needs a place, so valid files never pay for it.
 *
 * The listener sees nodes, not pairs: a scalar followed by `:` is taken for a
 * key and the node after it for its value. Whatever this cannot resolve with
 * certainty (explicit `? ` keys, `[a: 1]` pairs, empty sequence items) is
 * answered "fallback", and the caller asks the `yaml` package.
 */
import * as jsYaml from "js-yaml";
import type { SpecPath } from "./diagnostics.js";

export interface Position {
  line: number;
  column: number;
}

/** What js-yaml's listener is given (the loader's state; not in @types/js-yaml). */
interface LoaderState {
  position: number;
  kind: string | null;
  result: unknown;
}

const SCALAR = 0;
const MAPPING = 1;
const SEQUENCE = 2;
const NONE = -1;
/** Collections with more children than this get an index on first lookup; smaller ones are scanned. */
const SCAN_LIMIT = 16;

export class PositionIndex {
  private size = 0;
  private start = new Int32Array(1024);
  /** For a key: the offset past its `:` and the spaces after (where an empty value is); else NONE. */
  private after = new Int32Array(1024);
  private next = new Int32Array(1024);
  private first = new Int32Array(1024);
  private kind = new Uint8Array(1024);
  private readonly keys: Array<string | undefined> = [];
  private readonly keyIndexes = new Map<number, Map<string, number>>();
  private readonly itemIndexes = new Map<number, Int32Array>();
  private root = NONE;
  private lineStarts: number[] | undefined;

  private constructor(
    private readonly text: string,
    schema: jsYaml.Schema,
    /** The document as the first pass loaded it (this pass keeps no values: see the listener). */
    private readonly value: unknown,
  ) {
    // The stack of open nodes, as parallel arrays indexed by depth.
    const opened: number[] = [0];
    const firstChild: number[] = [NONE];
    const lastChild: number[] = [NONE];
    const children: number[] = [0];
    let depth = 0;
    const listener = (event: "open" | "close", state: LoaderState) => {
      if (event === "open") {
        depth++;
        opened[depth] = state.position;
        firstChild[depth] = lastChild[depth] = NONE;
        children[depth] = 0;
        return;
      }
      const d = depth--;
      if (state.kind === null) return; // an attempt that read nothing (end of a mapping, an empty value)
      const e = this.add();
      const result = state.result;
      const kind = state.kind === "mapping" ? MAPPING : state.kind === "sequence" ? SEQUENCE : SCALAR;
      this.kind[e] = kind;
      this.start[e] = this.skipSpace(opened[d] as number);
      const colon = kind === SCALAR ? this.colonAfter(state.position) : NONE;
      this.after[e] = colon;
      this.keys[e] = colon === NONE ? undefined : String(result);
      this.next[e] = NONE;
      // A node read through another (`- {a: 1}` is a flow mapping tried as a block key) closes
      // twice, at the same place: the inner one has the children.
      const only = lastChild[d] as number;
      const wrapped = children[d] === 1 && this.kind[only] !== SCALAR && this.start[only] === this.start[e];
      this.first[e] = kind === SCALAR ? NONE : wrapped ? (this.first[only] as number) : (firstChild[d] as number);
      const p = depth;
      if ((lastChild[p] as number) === NONE) firstChild[p] = e;
      else this.next[lastChild[p] as number] = e;
      lastChild[p] = e;
      children[p] = (children[p] as number) + 1;
      // Values are not kept (the first pass has them): what js-yaml builds from here is
      // garbage at once, instead of a second copy of the document for the collector to move.
      if (colon === NONE) state.result = null;
    };
    jsYaml.load(text, { schema, listener } as jsYaml.LoadOptions);
    this.root = lastChild[0] as number;
  }

  /** Reads `text` again with positions; undefined when js-yaml cannot (the caller falls back). */
  static build(text: string, schema: jsYaml.Schema, value: unknown): PositionIndex | undefined {
    try {
      return new PositionIndex(text, schema, value);
    } catch {
      return undefined;
    }
  }

  /** The same answer as the `yaml` package's locator (SourceLocator.locate), or "fallback". */
  locate(path: SpecPath, atKey: boolean): Position | "fallback" {
    const found = this.find(path, atKey);
    return found === "fallback" ? found : this.position(found);
  }

  private find(path: SpecPath, atKey: boolean): number | "fallback" {
    let e = this.root;
    let node = this.value;
    let offset = e === NONE ? 0 : (this.start[e] as number);
    let keyOffset: number | undefined;
    for (let i = 0; i < path.length; i++) {
      const segment = path[i] as string | number;
      const last = i === path.length - 1;
      if (node === null || typeof node !== "object") return offset;
      const kind = this.kind[e];
      if (kind === MAPPING && !Array.isArray(node)) {
        const key = String(segment);
        const k = this.keyEntry(e, key);
        if (k === NONE) {
          if (Object.prototype.hasOwnProperty.call(node, key)) return "fallback";
          return last && keyOffset !== undefined ? keyOffset : offset;
        }
        keyOffset = this.start[k] as number;
        if (last && atKey) return keyOffset;
        const v = this.next[k] as number;
        const loaded = (node as Record<string, unknown>)[key];
        if (v !== NONE && this.after[v] === NONE) {
          // The value node must be what was loaded there: a collection for a collection.
          if ((this.kind[v] !== SCALAR) !== (loaded !== null && typeof loaded === "object")) return "fallback";
          e = v;
          offset = this.start[v] as number;
        } else {
          if (loaded !== null && loaded !== undefined) return "fallback";
          offset = this.after[k] as number;
        }
        node = loaded;
      } else if (kind === SEQUENCE && Array.isArray(node)) {
        if (typeof segment !== "number") return offset;
        const item = this.item(e, segment, node.length);
        if (item === "fallback") return item;
        if (item === NONE) return offset;
        e = item;
        node = node[segment] as unknown;
        if ((this.kind[e] !== SCALAR) !== (node !== null && typeof node === "object")) return "fallback";
        keyOffset = undefined;
        offset = this.start[e] as number;
      } else {
        return "fallback";
      }
    }
    return offset;
  }

  /** The key child named `key` of mapping `e` (the last, where keys repeat), or NONE. */
  private keyEntry(e: number, key: string): number {
    const index = this.keyIndexes.get(e);
    if (index) return index.get(key) ?? NONE;
    let found = NONE;
    let count = 0;
    for (let c = this.first[e] as number; c !== NONE; c = this.next[c] as number) {
      if (this.keys[c] === key) found = c;
      count++;
    }
    if (count > SCAN_LIMIT) {
      const built = new Map<string, number>();
      for (let c = this.first[e] as number; c !== NONE; c = this.next[c] as number) {
        const name = this.keys[c];
        if (name !== undefined) built.set(name, c);
      }
      this.keyIndexes.set(e, built);
    }
    return found;
  }

  /** Item `index` of sequence `e`, NONE past its end; "fallback" when it has not one node per item. */
  private item(e: number, index: number, length: number): number | "fallback" {
    let items = this.itemIndexes.get(e);
    if (!items) {
      let count = 0;
      let found = NONE;
      for (let c = this.first[e] as number; c !== NONE; c = this.next[c] as number) if (count++ === index) found = c;
      if (count !== length) return "fallback";
      if (count <= SCAN_LIMIT) return found;
      items = new Int32Array(count);
      count = 0;
      for (let c = this.first[e] as number; c !== NONE; c = this.next[c] as number) items[count++] = c;
      this.itemIndexes.set(e, items);
    }
    if (items.length !== length) return "fallback";
    return index < items.length ? (items[index] as number) : NONE;
  }

  private add(): number {
    if (this.size === this.start.length) {
      const grow = <T extends Int32Array | Uint8Array>(a: T): T => {
        const b = new (a.constructor as new (n: number) => T)(a.length * 2);
        b.set(a);
        return b;
      };
      this.start = grow(this.start);
      this.after = grow(this.after);
      this.next = grow(this.next);
      this.first = grow(this.first);
      this.kind = grow(this.kind);
    }
    return this.size++;
  }

  /** The first character of a node from where js-yaml opened it: past spaces, line breaks and comments. */
  private skipSpace(offset: number): number {
    const text = this.text;
    let i = offset;
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++;
      else if (c === 0x23) {
        const end = text.indexOf("\n", i);
        if (end === -1) return text.length;
        i = end + 1;
      } else return i;
    }
  }

  /** When a `:` follows `offset` on its line (the node just read is a key): the offset past it and the spaces after; else NONE. */
  private colonAfter(offset: number): number {
    const text = this.text;
    let i = offset;
    while (text.charCodeAt(i) === 0x20 || text.charCodeAt(i) === 0x09) i++;
    if (text.charCodeAt(i) !== 0x3a) return NONE;
    i++;
    while (text.charCodeAt(i) === 0x20 || text.charCodeAt(i) === 0x09) i++;
    return i;
  }

  private position(offset: number): Position {
    if (!this.lineStarts) {
      const starts = [0];
      for (let i = this.text.indexOf("\n"); i !== -1; i = this.text.indexOf("\n", i + 1)) starts.push(i + 1);
      this.lineStarts = starts;
    }
    const starts = this.lineStarts;
    let low = 0;
    let high = starts.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if ((starts[mid] as number) <= offset) low = mid;
      else high = mid - 1;
    }
    return { line: low + 1, column: offset - (starts[low] as number) + 1 };
  }
}

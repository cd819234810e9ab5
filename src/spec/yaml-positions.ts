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
const STOP = Symbol("stop");

export class PositionIndex {
  private size = 0;
  private start = new Int32Array(1024);
  /** For a key: the offset past its `:` and the spaces after (where an empty value is); else NONE. */
  private after = new Int32Array(1024);
  private next = new Int32Array(1024);
  private first = new Int32Array(1024);
  private kind = new Uint8Array(1024);
  /** 1 for a collection the pass stopped inside (see `stopAt`): it has more than was read. */
  private partial = new Uint8Array(1024);
  private readonly keys: Array<string | undefined> = [];
  private readonly keyIndexes = new Map<number, Map<string, number>>();
  private readonly itemIndexes = new Map<number, Int32Array>();
  private root = NONE;
  /** The pass stopped at `stopAt` before the end of the file. */
  private stopped = false;
  private lineStarts: number[] | undefined;

  private constructor(
    private readonly text: string,
    options: jsYaml.LoadOptions,
    /** The document as the first pass loaded it (this pass keeps no values: see the listener). */
    private readonly value: unknown,
    /** Stop reading at the first node that starts past this offset. */
    stopAt: number,
  ) {
    // The stack of open nodes, as parallel arrays indexed by depth.
    const opened: number[] = [0];
    const firstChild: number[] = [NONE];
    const lastChild: number[] = [NONE];
    const children: number[] = [0];
    let depth = 0;
    const listener = (event: "open" | "close", state: LoaderState) => {
      if (event === "open") {
        if (state.position > stopAt) throw STOP;
        depth++;
        opened[depth] = state.position;
        firstChild[depth] = lastChild[depth] = NONE;
        children[depth] = 0;
        return;
      }
      if (state.kind === null) return void depth--; // an attempt that read nothing (end of a mapping, an empty value)
      const kind = state.kind === "mapping" ? MAPPING : state.kind === "sequence" ? SEQUENCE : SCALAR;
      const colon = kind === SCALAR ? this.colonAfter(state.position) : NONE;
      close(kind, colon === NONE ? undefined : String(state.result), colon, false);
      // Values are not kept (the first pass has them): what js-yaml builds from here is
      // garbage at once, instead of a second copy of the document for the collector to move.
      if (colon === NONE) state.result = null;
    };
    const close = (kind: number, key: string | undefined, colon: number, partial: boolean) => {
      const d = depth--;
      const e = this.add();
      this.kind[e] = kind;
      this.partial[e] = partial ? 1 : 0;
      this.start[e] = this.skipSpace(opened[d] as number);
      this.after[e] = colon;
      this.keys[e] = key;
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
    };
    try {
      jsYaml.load(text, { ...options, listener } as jsYaml.LoadOptions);
    } catch (error) {
      if (error !== STOP) throw error;
      this.stopped = true;
      // The nodes still open hold what was read of them; their kind is what their children say.
      while (depth > 0) {
        let hasKey = false;
        for (let c = firstChild[depth] as number; c !== NONE && !hasKey; c = this.next[c] as number) hasKey = this.keys[c] !== undefined;
        close(hasKey ? MAPPING : SEQUENCE, undefined, NONE, true);
      }
    }
    this.root = lastChild[0] as number;
  }

  /**
   * Reads `text` again with positions, up to the first node past `stopAt`
   * (the whole file by default); undefined when js-yaml cannot (the caller falls back).
   */
  static build(text: string, options: jsYaml.LoadOptions, value: unknown, stopAt = Infinity): PositionIndex | undefined {
    try {
      return new PositionIndex(text, options, value, stopAt);
    } catch {
      // js-yaml cannot read it with a listener: the `yaml` package locates instead.
      return undefined;
    }
  }

  /**
   * The same answer as the `yaml` package's locator (SourceLocator.locate),
   * "fallback", or "beyond": the node is past where this pass stopped (then
   * after every node this pass placed).
   */
  locate(path: SpecPath, atKey: boolean): Position | "fallback" | "beyond" {
    const found = this.find(path, atKey);
    return typeof found === "string" ? found : this.position(found);
  }

  private find(path: SpecPath, atKey: boolean): number | "fallback" | "beyond" {
    let e = this.root;
    if (e === NONE && this.stopped) return "beyond";
    let node = this.value;
    let offset = e === NONE ? 0 : (this.start[e] as number);
    let keyOffset: number | undefined;
    for (let i = 0; i < path.length; i++) {
      const segment = path[i] as string | number;
      const last = i === path.length - 1;
      if (node === null || typeof node !== "object") return offset;
      const kind = this.kind[e];
      const partial = this.partial[e] === 1;
      if ((kind === MAPPING || partial) && !Array.isArray(node)) {
        const key = String(segment);
        const k = this.keyEntry(e, key);
        if (k === NONE) {
          // A key the loaded mapping has is one this pass did not read, or could not see.
          if (Object.prototype.hasOwnProperty.call(node, key)) return partial ? "beyond" : "fallback";
          return last && keyOffset !== undefined ? keyOffset : offset;
        }
        keyOffset = this.start[k] as number;
        if (last && atKey) return keyOffset;
        const v = this.next[k] as number;
        const loaded = (node as Record<string, unknown>)[key];
        if (v === NONE && partial) {
          // The value was not read. Only a field missing from it right below is placed (at this key).
          const rest = path.slice(i + 1);
          const missingBelow =
            rest.length === 1 &&
            loaded !== null &&
            typeof loaded === "object" &&
            !Array.isArray(loaded) &&
            !Object.prototype.hasOwnProperty.call(loaded, String(rest[0]));
          return missingBelow ? keyOffset : "beyond";
        }
        if (v !== NONE && this.after[v] === NONE) {
          // The value node must be what was loaded there: a collection for a collection.
          const collection = loaded !== null && typeof loaded === "object";
          if (this.partial[v] !== 1 && (this.kind[v] !== SCALAR) !== collection) return "fallback";
          e = v;
          offset = this.start[v] as number;
        } else {
          if (loaded !== null && loaded !== undefined) return "fallback";
          offset = this.after[k] as number;
        }
        node = loaded;
      } else if ((kind === SEQUENCE || partial) && Array.isArray(node)) {
        if (typeof segment !== "number") return offset;
        const item = this.item(e, segment, node.length, partial);
        if (typeof item === "string") return item;
        if (item === NONE) return offset;
        e = item;
        node = node[segment] as unknown;
        const collection = node !== null && typeof node === "object";
        if (this.partial[e] !== 1 && (this.kind[e] !== SCALAR) !== collection) return "fallback";
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

  /**
   * Item `index` of sequence `e` (`length` items loaded), NONE past its end;
   * "fallback" when it has not one node per item, "beyond" when not read yet.
   */
  private item(e: number, index: number, length: number, partial: boolean): number | "fallback" | "beyond" {
    if (index >= length) return NONE;
    let items = this.itemIndexes.get(e);
    if (!items) {
      const list: number[] = [];
      for (let c = this.first[e] as number; c !== NONE; c = this.next[c] as number) list.push(c);
      items = Int32Array.from(list);
      if (list.length > SCAN_LIMIT) this.itemIndexes.set(e, items);
    }
    if (partial) return index < items.length ? (items[index] as number) : items.length <= length ? "beyond" : "fallback";
    return items.length === length ? (items[index] as number) : "fallback";
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
      this.partial = grow(this.partial);
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

/**
 * What the fast YAML reader (js-yaml) reads differently from the careful one,
 * found line by line: a quoted scalar or a flow collection going on over a
 * line indented no more than the block collection holding it (js-yaml accepts
 * such lines, YAML and the careful reader do not; a closing bracket alone may
 * stand at that indentation), and an empty sequence entry (js-yaml puts the
 * next line's `-` into the nested sequence: `-\n  -\n- x`).
 *
 * The scanner knows only what it needs: where a node may start, quotes, flow
 * brackets, comments, `-` entries, `key:` and block scalars (whose more
 * indented lines are skipped). When unsure it says yes: the file is then only
 * read more slowly, by the careful reader.
 */

/** A quoted scalar or flow collection still open at the end of a line. */
interface Open {
  /** The open quote (`"` or `'`), or 0 inside a flow collection. */
  quote: number;
  /** The open brackets, outermost first. */
  brackets: string;
  /** Column of the block collection holding the node: its lines must be indented more. */
  parent: number;
}

const SPACE = 0x20;
const isBlank = (c: number) => c === SPACE || c === 0x09 || c === 0x0d;
const isClosing = (c: number) => c === 0x5d /* ] */ || c === 0x7d; /* } */

export function spansLinesBadly(text: string): boolean {
  // Outside open nodes, only lines holding one of these need a look: quotes,
  // brackets, block scalar indicators, a `-` or `?` with nothing after it.
  const interesting = /["'[{|>]|[-?][ \t]*(?:#[^\n]*)?\r?$/gm;
  let open: Open | undefined;
  for (let from = 0; from < text.length;) {
    let start = from;
    if (open === undefined) {
      interesting.lastIndex = from;
      const match = interesting.exec(text);
      if (!match) return false;
      start = text.lastIndexOf("\n", match.index - 1) + 1;
    }
    const newline = text.indexOf("\n", start);
    const end = newline < 0 ? text.length : newline;
    let i = start;
    while (text.charCodeAt(i) === SPACE) i++;
    const c = text.charCodeAt(i);
    if (open !== undefined && i < end && c !== 0x0d) {
      const indent = i - start;
      if (c === 0x09 || c === 0x23 /* # */ || indent < open.parent) return true;
      // Only the outermost flow collection's closing bracket may stand at the holder's indentation.
      if (indent === open.parent && !(open.quote === 0 && open.brackets.length === 1 && isClosing(c))) return true;
    }
    const line = scanLine(text, start, i, end, open);
    if (line === "care") return true;
    open = typeof line === "object" ? line : undefined;
    from = line === "block" ? skipBlockScalar(text, end + 1, i - start) : end + 1;
  }
  return open !== undefined;
}

/** Scans one line from `from` (its first non-space character); `open` is what the lines before left open. */
function scanLine(text: string, lineStart: number, from: number, end: number, open: Open | undefined): "care" | "block" | "ok" | Open {
  let brackets = open?.brackets ?? "";
  let parent = open?.parent ?? 0;
  // In a flow mapping: whether the next node is a value (after `:`) rather than a key.
  let value = false;
  let i = from;
  if (open !== undefined && open.quote !== 0) {
    i = closingQuote(text, open.quote, i, end);
    if (i < 0) return open;
  }
  let atNode = open === undefined || open.quote === 0;
  // Column of the innermost block collection (`-` entries, `key:`), and of the last node started.
  let block = from - lineStart;
  let token = block;
  let emptyEntry = false;
  while (i < end) {
    const c = text.charCodeAt(i);
    const next = i + 1 < end ? text.charCodeAt(i + 1) : SPACE;
    if (isBlank(c)) {
      i++;
      continue;
    }
    if (c === 0x23 /* # */ && (i === lineStart || isBlank(text.charCodeAt(i - 1)))) break;
    if (atNode) {
      if (brackets === "") token = i - lineStart;
      if (c === 0x22 /* " */ || c === 0x27 /* ' */) {
        const after = closingQuote(text, c, i + 1, end);
        if (after < 0) return { quote: c, brackets, parent: brackets === "" ? block : parent };
        i = after;
        atNode = false;
        emptyEntry = false;
        continue;
      }
      if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
        // A collection as a key of a flow mapping: js-yaml makes a string of it.
        if (brackets.endsWith("{") && !value) return "care";
        if (brackets === "") parent = block;
        brackets += String.fromCharCode(c);
        value = false;
        i++;
        emptyEntry = false;
        continue;
      }
      if (brackets === "" && (c === 0x7c /* | */ || c === 0x3e) /* > */) return "block";
      if (brackets === "" && (c === 0x2d /* - */ || c === 0x3f) /* ? */ && isBlank(next)) {
        block = i - lineStart;
        emptyEntry = true;
        i++;
        continue;
      }
    }
    emptyEntry = false;
    if (brackets !== "" && c === 0x2c /* , */) {
      atNode = true;
      value = false;
    } else if (brackets !== "" && isClosing(c)) {
      brackets = brackets.slice(0, -1);
      atNode = false;
    } else if (c === 0x3a /* : */ && (isBlank(next) || (brackets !== "" && ",[]{}".includes(String.fromCharCode(next))))) {
      if (brackets === "") block = token;
      atNode = true;
      value = true;
    } else atNode = false;
    i++;
  }
  if (emptyEntry) return "care";
  return brackets !== "" ? { quote: 0, brackets, parent } : "ok";
}

/** The index after the quote closing a scalar opened with `quote`, scanning from `from`; -1 when the line ends first. */
function closingQuote(text: string, quote: number, from: number, end: number): number {
  for (let i = from; i < end; i++) {
    const c = text.charCodeAt(i);
    if (quote === 0x22 && c === 0x5c /* backslash */) i++;
    else if (c === quote) {
      if (quote === 0x27 && text.charCodeAt(i + 1) === 0x27) i++;
      else return i + 1;
    }
  }
  return -1;
}

/** Where the lines of a block scalar (blank, or indented more than `indent`) end. */
function skipBlockScalar(text: string, from: number, indent: number): number {
  let start = from;
  while (start < text.length) {
    let i = start;
    while (text.charCodeAt(i) === SPACE) i++;
    const c = text.charCodeAt(i);
    const blank = i >= text.length || c === 0x0a || c === 0x0d;
    if (!blank && i - start <= indent) return start;
    const newline = text.indexOf("\n", i);
    if (newline < 0) return text.length;
    start = newline + 1;
  }
  return start;
}

/**
 * The fast YAML reader: js-yaml, for ordinary files (a 100,000-task file in
 * about a second). It reads what the careful reader (yaml-careful.ts) reads,
 * the same way, or declines and leaves the file to it:
 * - numbers are the `yaml` package's YAML 1.2 core numbers, not js-yaml's;
 * - files with anchors, tags, merge keys, explicit (`? `) or collection keys
 *   are declined (NEEDS_CARE), and so are files where a quoted scalar or a flow
 *   collection goes on past the end of a line: js-yaml accepts continuation
 *   lines indented less than YAML allows, the careful reader does not;
 * - anything js-yaml refuses (syntax, duplicate keys, depth) is declined.
 */
import * as jsYaml from "js-yaml";
import { MAX_YAML_DEPTH } from "./yaml-careful.js";

// js-yaml exports its built-in types, though @types/js-yaml does not declare them.
const BUILTIN = (jsYaml as unknown as { types: Record<"merge" | "null" | "bool", jsYaml.Type> }).types;
/**
 * The `yaml` package's core schema numbers (no `0b`, no `_`, no signed hex or
 * octal, signed `.5`), which js-yaml's core reads differently. One js-yaml
 * type per tag: js-yaml keeps only the last of several.
 */
const numbers = (tag: "int" | "float", forms: Array<[RegExp, (text: string) => number]>) =>
  new jsYaml.Type(`tag:yaml.org,2002:${tag}`, {
    kind: "scalar",
    resolve: (text: unknown) => typeof text === "string" && forms.some(([test]) => test.test(text)),
    construct: (text: string) => (forms.find(([test]) => test.test(text)) as [RegExp, (text: string) => number])[1](text),
  });
const CORE_NUMBERS = [
  numbers("int", [
    [/^0o[0-7]+$/, (t) => parseInt(t.slice(2), 8)],
    [/^[-+]?[0-9]+$/, (t) => parseInt(t, 10)],
    [/^0x[0-9a-fA-F]+$/, (t) => parseInt(t.slice(2), 16)],
  ]),
  numbers("float", [
    [
      /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/,
      (t) => (t.slice(-3).toLowerCase() === "nan" ? NaN : t.startsWith("-") ? -Infinity : Infinity),
    ],
    [/^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/, parseFloat],
    [/^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/, parseFloat],
  ]),
];
const FAST_SCHEMA = jsYaml.FAILSAFE_SCHEMA.extend({ implicit: [BUILTIN.null, BUILTIN.bool, ...CORE_NUMBERS, BUILTIN.merge] });
const FAST_OPTIONS = { schema: FAST_SCHEMA, maxDepth: MAX_YAML_DEPTH } as jsYaml.LoadOptions;
/**
 * What sends a file to the careful reader: an anchor, a tag, a merge key, an
 * explicit key (`? `) or a collection used as a key. Text in strings and
 * comments may match too; such files are merely read more slowly.
 */
const NEEDS_CARE = /(?:^|[\s[{,])(?:&\S|!|\?(?:\s|$))|<<\s*:|[\]}]\s*:/m;

export const DECLINED = Symbol("declined");

/** The fast reader: the file's value, or DECLINED when the file needs the careful reader. */
export function readFast(text: string): unknown {
  if (NEEDS_CARE.test(text) || spansLines(text)) return DECLINED;
  try {
    return jsYaml.load(text, FAST_OPTIONS);
  } catch {
    // Anything unusual (syntax error, duplicate key, depth) is re-read carefully,
    // which reports every problem with its position.
    return DECLINED;
  }
}

const SPACE = 0x20;
const isBlank = (c: number) => c === SPACE || c === 0x09 || c === 0x0d;

/**
 * Whether a quoted scalar or a flow collection goes on past the end of a line
 * (or a sequence entry is empty, which js-yaml misreads).
 * A line scanner that knows only what it needs: where a node may start, quotes,
 * flow brackets, comments, and block scalars (whose more indented lines are
 * skipped). When unsure it says yes: the file is then only read more slowly.
 */
export function spansLines(text: string): boolean {
  // Only lines holding one of these need a look: quotes, brackets, block
  // scalar indicators, a `-` or `?` with nothing after it.
  const interesting = /["'[{|>]|[-?][ \t]*(?:#[^\n]*)?\r?$/gm;
  for (let from = 0; from < text.length;) {
    interesting.lastIndex = from;
    const match = interesting.exec(text);
    if (!match) return false;
    const start = text.lastIndexOf("\n", match.index - 1) + 1;
    const newline = text.indexOf("\n", match.index);
    const end = newline < 0 ? text.length : newline;
    let i = start;
    while (text.charCodeAt(i) === SPACE) i++;
    const line = scanLine(text, i, end);
    if (line === "spans") return true;
    from = line === "block" ? skipBlockScalar(text, end + 1, i - start) : end + 1;
  }
  return false;
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

function scanLine(text: string, from: number, end: number): "spans" | "block" | "ok" {
  let depth = 0;
  let atNode = true;
  // After a `-` with nothing after it yet: js-yaml puts the next line's `-` into
  // a nested sequence whose last entry is empty (`-\n  -\n- x`), YAML does not.
  let emptyEntry = false;
  for (let i = from; i < end;) {
    const c = text.charCodeAt(i);
    const next = text.charCodeAt(i + 1);
    if (isBlank(c)) {
      i++;
      continue;
    }
    if (c === 0x23 /* # */ && (i === from || isBlank(text.charCodeAt(i - 1)))) break;
    if (atNode) {
      if (c === 0x22 /* " */ || c === 0x27 /* ' */) {
        i = closingQuote(text, i, end);
        if (i < 0) return "spans";
        atNode = false;
        continue;
      }
      if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
        depth++;
        i++;
        continue;
      }
      if (depth === 0 && (c === 0x7c /* | */ || c === 0x3e) /* > */) return "block";
      if (depth === 0 && (c === 0x2d /* - */ || c === 0x3f) /* ? */ && (isBlank(next) || i + 1 >= end)) {
        emptyEntry = true;
        i++;
        continue;
      }
    }
    emptyEntry = false;
    if (depth > 0 && c === 0x2c /* , */) atNode = true;
    else if (depth > 0 && (c === 0x5d /* ] */ || c === 0x7d) /* } */) {
      depth--;
      atNode = false;
    } else if (c === 0x3a /* : */ && (isBlank(next) || i + 1 >= end || (depth > 0 && ",[]{}".includes(text[i + 1] as string))))
      atNode = true;
    else atNode = false;
    i++;
  }
  return depth > 0 || emptyEntry ? "spans" : "ok";
}

/** The index after the quote closing the one at `open`, or -1 when the line ends first. */
function closingQuote(text: string, open: number, end: number): number {
  const quote = text.charCodeAt(open);
  for (let i = open + 1; i < end; i++) {
    const c = text.charCodeAt(i);
    if (quote === 0x22 && c === 0x5c /* \\ */) i++;
    else if (c === quote) {
      if (quote === 0x27 && text.charCodeAt(i + 1) === 0x27) i++;
      else return i + 1;
    }
  }
  return -1;
}

/**
 * The fast YAML reader: js-yaml, for ordinary files (a 100,000-task file in
 * about a second). It reads what the careful reader (yaml-careful.ts) reads,
 * the same way, or declines and leaves the file to it:
 * - numbers are the `yaml` package's YAML 1.2 core numbers, not js-yaml's;
 * - files with anchors, tags, merge keys, explicit (`? `) or collection keys
 *   are declined (NEEDS_CARE), and so are files where a quoted scalar or a flow
 *   collection goes on over lines indented less than YAML allows (js-yaml
 *   accepts them, the careful reader does not) or a sequence entry is empty
 *   (yaml-lines.ts);
 * - anything js-yaml refuses (syntax, duplicate keys, depth) is declined.
 */
import * as jsYaml from "js-yaml";
import { MAX_YAML_DEPTH } from "./yaml-careful.js";
import { spansLinesBadly } from "./yaml-lines.js";

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
    resolve: (text: unknown) => typeof text === "string" && mayBeNumber(text) && forms.some(([test]) => test.test(text)),
    construct: (text: string) => (forms.find(([test]) => test.test(text)) as [RegExp, (text: string) => number])[1](text),
  });
/** Every number starts with a digit, a sign or a dot: most plain scalars are words, and stop here. */
const mayBeNumber = (text: string) => {
  const c = text.charCodeAt(0);
  return (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2b || c === 0x2e;
};
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
export const FAST_OPTIONS = { schema: FAST_SCHEMA, maxDepth: MAX_YAML_DEPTH } as jsYaml.LoadOptions;
/**
 * What sends a file to the careful reader: an anchor, a tag, a merge key, an
 * explicit key (`? `) or a collection used as a key. Text in strings and
 * comments may match too; such files are merely read more slowly.
 */
const NEEDS_CARE = /(?:^|[\s[{,])(?:&\S|!|\?(?:\s|$))|<<\s*:|[\]}]\s*:/m;

export const DECLINED = Symbol("declined");

/** The fast reader: the file's value, or DECLINED when the file needs the careful reader. */
export function readFast(text: string): unknown {
  if (NEEDS_CARE.test(text) || spansLinesBadly(text)) return DECLINED;
  try {
    return jsYaml.load(text, FAST_OPTIONS);
  } catch {
    // Anything unusual (syntax error, duplicate key, depth) is re-read carefully,
    // which reports every problem with its position.
    return DECLINED;
  }
}

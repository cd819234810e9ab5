/**
 * The careful YAML reader: the `yaml` package, under limits, with every
 * problem reported at its place in the file. It is the reference meaning of a
 * file (YAML 1.2 core schema plus merge keys); the fast reader (yaml-fast.ts)
 * only reads files it reads the same way, and hands every other one here.
 *
 * What it adds to the package: nesting is bounded (MAX_YAML_DEPTH, counted on
 * the token tree before the recursive composer runs, so deep files never
 * overflow the stack), aliases must name an earlier anchor and are measured
 * (yaml-aliases.ts: how deep they nest and how much they add, reported at the
 * alias), merge sources must be mappings, mapping keys must be scalars (`null`
 * reads as "null", as in the fast reader), unknown tags are errors, and one
 * document per file.
 */
import { Composer, isAlias, isMap, isScalar, isSeq, LineCounter, Parser, visit, type Document, type Node, type Pair } from "yaml";
import * as jsYaml from "js-yaml";
import type { DiagnosticBag } from "./diagnostics.js";

import { checkAliases, MAX_YAML_DEPTH } from "./yaml-aliases.js";
import { documentValue } from "./yaml-value.js";

export { MAX_YAML_DEPTH };

export const CAREFUL_OPTIONS = { uniqueKeys: false, merge: true, schema: "core", prettyErrors: false } as const;

interface Place {
  position: { line: number; column: number };
  space: "rendered";
}

export function readCarefully(text: string, bag: DiagnosticBag): { value: unknown; doc: Document.Parsed; lines: LineCounter } | undefined {
  const lines = new LineCounter();
  const at = (offset: number): Place => {
    const pos = lines.linePos(offset);
    return { position: { line: pos.line, column: pos.col }, space: "rendered" };
  };
  const tooDeepAt = (place: Place) => {
    bag.error("E_YAML_TOO_DEEP", [], `nesting deeper than ${MAX_YAML_DEPTH} levels`, {
      ...place,
      hint: "a workflow needs a few levels; flatten the structure",
    });
    return undefined;
  };
  // The package's parser is slow on deep flow collections and overflows the
  // stack on deep block ones: js-yaml, which stops at the limit, looks first.
  const probed = bracketsDeeperThanLimit(text) ? depthProbe(text) : undefined;
  if (probed !== undefined) return tooDeepAt(probed);
  let tokens;
  try {
    tokens = Array.from(new Parser(lines.addNewLine).parse(text));
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    return tooDeepAt(depthProbe(text) ?? at(0));
  }
  const deep = tooDeep(tokens);
  if (deep !== undefined) return tooDeepAt(at(deep));
  const docs = Array.from(new Composer(CAREFUL_OPTIONS).compose(tokens, true, text.length));
  const doc = docs[0] as Document.Parsed;
  let failed = false;
  for (const error of doc.errors) {
    bag.error("E_YAML_SYNTAX", [], firstLine(error.message), at(error.pos[0]));
    failed = true;
  }
  if (docs.length > 1) {
    bag.error("E_YAML_MULTIPLE_DOCUMENTS", [], "a second YAML document starts here; a workflow file holds one", {
      ...at((docs[1] as Document.Parsed).range[0]),
      hint: "remove the `---` line, or split the file in two",
    });
    failed = true;
  }
  for (const warning of doc.warnings) {
    if (warning.code !== "TAG_RESOLVE_FAILED") continue;
    const tag = /(\S+)$/.exec(firstLine(warning.message))?.[1] ?? "";
    bag.error("E_YAML_TAG", [], `unknown tag \`${tag.replace(/^tag:yaml\.org,2002:/, "!!")}\``, {
      ...at(warning.pos[0]),
      hint: "workflow files use plain YAML values; remove the tag",
    });
    failed = true;
  }
  if (failed || !checkNodes(doc, bag, at)) return undefined;
  const alias = checkAliases(doc);
  if (alias?.problem === "depth") {
    bag.error("E_YAML_TOO_DEEP", [], `nesting deeper than ${MAX_YAML_DEPTH} levels once alias *${alias.alias.source} is expanded`, {
      ...at(start(alias.alias)),
      hint: "an alias nests the whole node it names; flatten the structure",
    });
    return undefined;
  }
  if (alias?.problem === "cycle") {
    bag.error("E_YAML_ALIAS_CYCLE", [], `alias *${alias.alias.source} is inside the node it names`, {
      ...at(start(alias.alias)),
      hint: "a value cannot hold itself; name a node outside this one",
    });
    return undefined;
  }
  if (alias?.problem === "size") {
    bag.error(
      "E_YAML_ALIAS_LIMIT",
      [],
      `aliases expand the file beyond ${alias.limit.toLocaleString("en-US")} nodes from here (alias *${alias.alias.source})`,
      {
        ...at(start(alias.alias)),
        hint: "the file looks like an alias bomb; write the repeated parts out or use fewer aliases",
      },
    );
    return undefined;
  }
  return { value: documentValue(doc), doc, lines };
}

/** Whether brackets, wherever they are, open deeper than the limit: a cheap bound on flow nesting. */
function bracketsDeeperThanLimit(text: string): boolean {
  let depth = 0;
  for (let i = text.search(/[[{]/); i >= 0 && i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5b || c === 0x7b) {
      if (++depth > MAX_YAML_DEPTH) return true;
    } else if ((c === 0x5d || c === 0x7d) && depth > 0) depth--;
  }
  return false;
}

/** Where js-yaml finds nesting beyond the limit, if that is the first problem it meets. */
function depthProbe(text: string): Place | undefined {
  try {
    jsYaml.load(text, { schema: jsYaml.FAILSAFE_SCHEMA, maxDepth: MAX_YAML_DEPTH } as jsYaml.LoadOptions);
  } catch (error) {
    if (error instanceof jsYaml.YAMLException && error.reason.includes("maxDepth"))
      return { position: { line: error.mark.line + 1, column: error.mark.column + 1 }, space: "rendered" };
  }
  return undefined;
}

/** The offset of the first node nested deeper than MAX_YAML_DEPTH, walking the token tree without recursion. */
function tooDeep(tokens: unknown[]): number | undefined {
  const stack: Array<[unknown, number]> = [];
  for (const token of tokens) {
    const value = (token as { type: string; value?: unknown }).type === "document" ? (token as { value?: unknown }).value : undefined;
    if (value) stack.push([value, 1]);
    while (stack.length > 0) {
      const [node, depth] = stack.pop() as [unknown, number];
      const { type, offset, items } = node as { type: string; offset: number; items?: Array<{ key?: unknown; value?: unknown }> };
      if (depth > MAX_YAML_DEPTH) return offset;
      if (type !== "block-map" && type !== "block-seq" && type !== "flow-collection") continue;
      for (let i = (items?.length ?? 0) - 1; i >= 0; i--) {
        const item = (items as Array<{ key?: unknown; value?: unknown }>)[i] as { key?: unknown; value?: unknown };
        if (item.value) stack.push([item.value, depth + 1]);
        if (item.key) stack.push([item.key, depth + 1]);
      }
    }
  }
  return undefined;
}

/**
 * One pass over the composed nodes: aliases name an earlier anchor, merge
 * sources are mappings, keys are scalars. Null keys become "null", as
 * js-yaml reads them.
 */
function checkNodes(doc: Document.Parsed, bag: DiagnosticBag, at: (offset: number) => Place): boolean {
  const anchors = new Map<string, Node>();
  const later = new Set<string>();
  visit(doc, {
    Node(_key, node) {
      if (!isAlias(node) && node.anchor) later.add(node.anchor);
    },
  });
  let ok = true;
  const fail = (code: string, node: unknown, message: string, hint: string) => {
    bag.error(code, [], message, { ...at(start(node)), hint });
    ok = false;
  };
  const resolve = (node: unknown): unknown => (isAlias(node) ? anchors.get(node.source) : node);
  visit(doc, {
    Alias(_key, alias) {
      if (anchors.has(alias.source)) return;
      if (later.has(alias.source))
        fail("E_YAML_UNKNOWN_ALIAS", alias, `alias *${alias.source} comes before its anchor &${alias.source}`, "write the anchor first");
      else
        fail(
          "E_YAML_UNKNOWN_ALIAS",
          alias,
          `alias *${alias.source} names no anchor`,
          "an alias repeats a node marked `&name` earlier in the file",
        );
    },
    Node(_key, node) {
      if (!isAlias(node) && node.anchor) anchors.set(node.anchor, node);
    },
    Pair(_key, pair: Pair) {
      const key = pair.key;
      if (isScalar(key) && typeof key.value === "symbol") {
        const known = (node: unknown) => !isAlias(node) || anchors.has(node.source);
        const value = resolve(pair.value);
        const sources = isSeq(value) ? value.items.filter(known).map(resolve) : known(pair.value) ? [value] : [];
        if (!sources.every((s) => isMap(s)))
          fail("E_YAML_MERGE", pair.value ?? key, "a merge key `<<` takes a mapping or a list of mappings", "for example `<<: *defaults`");
      } else if (isScalar(key)) {
        if (key.value === null) key.value = "null";
      } else if (key !== null && !(isAlias(key) && isScalar(resolve(key)))) {
        fail("E_YAML_KEY", key, "a mapping key must be a plain value, not a list or a mapping", "write the key as a string");
      }
    },
  });
  return ok;
}

function start(node: unknown): number {
  return (node as { range?: [number, number, number] } | null)?.range?.[0] ?? 0;
}

function firstLine(message: string): string {
  return message.split("\n")[0] ?? message;
}

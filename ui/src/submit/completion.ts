/**
 * Which keys the workflow's JSON Schema (schema/workflow.schema.json, `troupe schema`) allows where the cursor is:
 * the cursor's key path read from the YAML's indentation above it (a spec being typed is seldom valid YAML, so
 * it is not parsed), then the schema walked along that path. Pure: the editor (YamlEditor.tsx) asks, this answers.
 */

/** A step of a key path: a mapping's key, or ITEM for "an element of the list". */
export const ITEM = "[]";

export interface KeyContext {
  /** From the document's top to the mapping the cursor's key goes in. */
  path: string[];
  /** The part of the key typed so far, and where it starts in the document. */
  typed: string;
  from: number;
  /** Keys already in that mapping (not offered again). */
  present: string[];
}

interface Line {
  /** The column of the line's key (after "- " for a list item's first key). */
  key: number;
  /** The column of its "- ", if it starts a list item. */
  dash?: number;
  /** Its key, if it is `key:` or `key: value`. */
  name?: string;
  /** `key:` with nothing after it (the parent of what is indented under it). */
  opens: boolean;
}

function readLine(text: string): Line | undefined {
  const match = /^( *)(- +)?(.*)$/.exec(text)!;
  const rest = match[3]!;
  if (rest.trim() === "" || rest.startsWith("#"))
    return match[2] ? { key: match[1]!.length + match[2].length, dash: match[1]!.length, opens: false } : undefined;
  const key = /^([A-Za-z_][\w-]*)\s*:(\s+(.*))?$/.exec(rest) ?? /^([A-Za-z_][\w-]*)\s*:$/.exec(rest);
  const value = key?.[3]?.trim() ?? "";
  return {
    key: match[1]!.length + (match[2]?.length ?? 0),
    ...(match[2] ? { dash: match[1]!.length } : {}),
    ...(key ? { name: key[1] } : {}),
    opens: key !== null && (value === "" || value.startsWith("#")),
  };
}

/** Where the cursor (offset `at`) is a key being typed: its path and prefix; undefined where a value goes. */
export function keyContextAt(doc: string, at: number): KeyContext | undefined {
  const lineStart = doc.lastIndexOf("\n", at - 1) + 1;
  const before = doc.slice(lineStart, at);
  const typing = /^( *)(- +)?([A-Za-z_][\w-]*)?$/.exec(before);
  if (!typing) return undefined;
  const typed = typing[3] ?? "";
  const path: string[] = [];
  let target = typing[1]!.length + (typing[2]?.length ?? 0);
  /** Set when the cursor's mapping is a list item: its parent is the key the list hangs from. */
  let inItemAt: number | undefined = typing[2] ? typing[1]!.length : undefined;
  const above = doc.slice(0, lineStart).split("\n");
  above.pop();
  const present: string[] = [];
  let siblingsDone = inItemAt !== undefined;
  if (inItemAt !== undefined) {
    path.push(ITEM);
    target = inItemAt;
  }
  for (let i = above.length - 1; i >= 0; i -= 1) {
    const line = readLine(above[i]!);
    if (!line) continue;
    if (inItemAt === undefined && line.dash !== undefined && line.dash < target && line.key === target) {
      // The first key of the list item the cursor's mapping is in.
      if (!siblingsDone && line.name) present.push(line.name);
      siblingsDone = true;
      path.push(ITEM);
      target = line.dash;
      inItemAt = line.dash;
      continue;
    }
    if (!siblingsDone && line.key === target && line.dash === undefined && line.name) present.push(line.name);
    // The list's own key may sit at the same column as its dashes ("tasks:\n- name: ...").
    const parent = inItemAt !== undefined ? line.key <= target : line.key < target;
    if (parent && line.opens && line.name && line.dash === undefined) {
      siblingsDone = true;
      path.push(line.name);
      target = line.key;
      inItemAt = undefined;
    } else if (parent && line.opens && line.name && line.dash !== undefined) {
      // `- name:` opening a mapping under a list item's first key.
      siblingsDone = true;
      path.push(line.name, ITEM);
      target = line.dash;
      inItemAt = line.dash;
    } else if (line.key < target && line.dash === undefined) {
      return undefined;
    }
    if (target === 0 && inItemAt === undefined) break;
  }
  return { path: path.reverse(), typed, from: at - typed.length, present };
}

export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  additionalProperties?: JsonSchema | boolean;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  description?: string;
}

/** The schema and the alternatives it stands for (anyOf, oneOf, allOf: any may be the one that applies). */
function alternatives(schema: JsonSchema): JsonSchema[] {
  return [schema, ...[...(schema.anyOf ?? []), ...(schema.oneOf ?? []), ...(schema.allOf ?? [])].flatMap(alternatives)];
}

export interface KeyOffer {
  key: string;
  description?: string;
  /** What the value is: a mapping or list goes on the lines below, anything else after the key. */
  block: boolean;
}

/** The keys the schema allows in the mapping at `path`, in the schema's order. */
export function keysAt(schema: JsonSchema, path: readonly string[]): KeyOffer[] {
  let here = [schema];
  for (const step of path)
    here = here
      .flatMap(alternatives)
      .flatMap((s) => (step === ITEM ? (s.items ? [s.items] : []) : s.properties?.[step] ? [s.properties[step]] : []));
  const offers = new Map<string, KeyOffer>();
  for (const s of here.flatMap(alternatives))
    for (const [key, value] of Object.entries(s.properties ?? {})) {
      if (offers.has(key)) continue;
      const kinds = alternatives(value).flatMap((v) => (Array.isArray(v.type) ? v.type : v.type ? [v.type] : []));
      const block = kinds.length > 0 && kinds.every((k) => k === "object" || k === "array");
      offers.set(key, { key, ...(value.description ? { description: value.description } : {}), block });
    }
  return [...offers.values()];
}

/**
 * The special tokens of a workflow (`{{output}}`, `{{input:0}}`, `{{host:server}}`,
 * `{{workflow_id}}`). They are not template variables: they survive templating
 * untouched and are substituted when a task starts.
 */

export type SpecialToken =
  | { kind: "output" }
  | { kind: "workflow_id" }
  | { kind: "input"; index: number }
  | { kind: "input"; task: string }
  | { kind: "host"; task: string };

export type TokenPart = string | SpecialToken;

/** What a token parse found: the pieces of the string and any `{{...}}` that is not a token. */
export interface TokenizedString {
  parts: TokenPart[];
  unknown: string[];
}

export const TOKEN_NAMES = ["output", "workflow_id", "input:", "host:"];

/** Tokens as templating must leave them: no inner spaces. `{{word:...}}` covers misspelt kinds too. */
export const PROTECTED_TOKEN = /\{\{(output|workflow_id|[A-Za-z_][\w-]*:[^{}\s]*)\}\}/g;
const ANY_BRACES = /\{\{([^{}]*)\}\}/g;

export function parseToken(inner: string): SpecialToken | undefined {
  if (inner === "output") return { kind: "output" };
  if (inner === "workflow_id") return { kind: "workflow_id" };
  const colon = inner.indexOf(":");
  if (colon < 0) return undefined;
  const kind = inner.slice(0, colon);
  const arg = inner.slice(colon + 1);
  if (arg === "" || /\s/.test(arg)) return undefined;
  if (kind === "host") return { kind: "host", task: arg };
  if (kind === "input") return /^\d+$/.test(arg) ? { kind: "input", index: Number(arg) } : { kind: "input", task: arg };
  return undefined;
}

/** Split a string into literal text and tokens. Fast when there are no braces at all. */
export function tokenizeString(value: string): TokenizedString {
  if (!value.includes("{{")) return { parts: [value], unknown: [] };
  const parts: TokenPart[] = [];
  const unknown: string[] = [];
  let last = 0;
  for (const match of value.matchAll(ANY_BRACES)) {
    const token = parseToken(match[1] as string);
    if (!token) {
      unknown.push(match[0]);
      continue;
    }
    if (match.index > last) parts.push(value.slice(last, match.index));
    parts.push(token);
    last = match.index + match[0].length;
  }
  if (last < value.length) parts.push(value.slice(last));
  return { parts, unknown };
}

export function hasToken(value: string): boolean {
  return value.includes("{{");
}

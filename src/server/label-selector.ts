/**
 * OSMO's label selectors for listing workflows: `key=value` (that value),
 * `key=*` wildcards (any run of characters) and `(a|b)` alternatives, such as
 * `project=(sim_*|hil_*)` or `team=robotics_(a|b)`. troupe also takes `key`
 * alone: any value. Each selector becomes the GLOB patterns the store matches.
 */
import { checkLabelKey, checkLabelValue } from "../spec/index.js";

/** As OSMO: a selector expands to at most this many patterns. */
export const MAX_SELECTOR_PATTERNS = 32;

export type LabelSelector = { key: string; value?: string; patterns?: string[] };

export function parseLabelSelector(text: string): { ok: true; selector: LabelSelector } | { ok: false; reason: string } {
  const eq = text.indexOf("=");
  const key = eq < 0 ? text : text.slice(0, eq);
  const keyChecked = checkLabelKey(key);
  if (!keyChecked.ok) return { ok: false, reason: `label key \`${key}\` ${keyChecked.reason}` };
  if (eq < 0) return { ok: true, selector: { key } };
  const value = text.slice(eq + 1);
  const expanded = expand(value);
  if (!expanded.ok) return { ok: false, reason: `label selector \`${text}\`: ${expanded.reason}` };
  for (const pattern of expanded.patterns) {
    // `*` is no label character: the rest of the pattern must be a label value, with one letter standing in for each.
    const checked = checkLabelValue(pattern.replaceAll("*", "a"));
    if (!checked.ok || pattern === "")
      return { ok: false, reason: `label selector \`${text}\`: \`${pattern}\` ${checked.ok ? "is empty" : checked.reason}` };
  }
  const [only] = expanded.patterns;
  if (expanded.patterns.length === 1 && only !== undefined && !only.includes("*")) return { ok: true, selector: { key, value: only } };
  return { ok: true, selector: { key, patterns: expanded.patterns } };
}

/** `a(b|c)d*` -> [`abd*`, `acd*`]; runs of `*` become one. */
function expand(value: string): { ok: true; patterns: string[] } | { ok: false; reason: string } {
  const segments: string[][] = [];
  let literal = "";
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === "(") {
      const close = value.indexOf(")", i + 1);
      if (close < 0) return { ok: false, reason: "alternatives are written (value|value)" };
      const inner = value.slice(i + 1, close);
      if (inner.includes("(")) return { ok: false, reason: "alternatives cannot be nested" };
      const alternatives = inner.split("|");
      if (alternatives.length < 2 || alternatives.some((a) => a === ""))
        return { ok: false, reason: "alternatives need at least two non-empty values, (a|b)" };
      if (literal) segments.push([literal]);
      literal = "";
      segments.push(alternatives);
      i = close;
    } else if (c === ")" || c === "|") return { ok: false, reason: "alternatives are written (value|value)" };
    else literal += c;
  }
  if (literal) segments.push([literal]);
  const count = segments.reduce((n, s) => n * s.length, 1);
  if (count > MAX_SELECTOR_PATTERNS)
    return { ok: false, reason: `it expands to ${count} patterns; at most ${MAX_SELECTOR_PATTERNS} are allowed` };
  let patterns = [""];
  for (const segment of segments) patterns = patterns.flatMap((p) => segment.map((s) => p + s));
  return { ok: true, patterns: [...new Set(patterns.map((p) => p.replace(/\*+/g, "*")))] };
}

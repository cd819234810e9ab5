/**
 * Finding places in a template. @huggingface/jinja reports errors without
 * positions, and rendering moves lines around; these helpers give the user a
 * line in the file they wrote.
 */
import { parse, tokenize } from "@huggingface/jinja";

export interface TemplatePosition {
  line: number;
  column: number;
}

interface Tag {
  kind: "expression" | "statement";
  body: string;
  offset: number;
}

const TAG = /\{\{([\s\S]*?)\}\}|\{%-?([\s\S]*?)-?%\}/g;

function tags(template: string): Tag[] {
  const out: Tag[] = [];
  for (const match of template.matchAll(TAG)) {
    if (match[1] !== undefined) out.push({ kind: "expression", body: match[1], offset: match.index });
    else out.push({ kind: "statement", body: match[2] ?? "", offset: match.index });
  }
  return out;
}

export function positionOf(text: string, offset: number): TemplatePosition {
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf("\n"); i !== -1 && i < offset; i = text.indexOf("\n", i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, column: offset - lineStart + 1 };
}

/** Uses that ask about a variable rather than render it: `x | default(...)`, `x is defined`. */
const GUARDED_USE = /^\s*(?:\|\s*default\b|is\s+(?:not\s+)?(?:defined|undefined)\b)/;

/** The first tag that uses `name` as an identifier where an undefined value is an error. */
export function locateVariable(template: string, name: string): TemplatePosition | undefined {
  const word = new RegExp(`(^|[^\\w.'"])${name.replace(/[^\w]/g, "")}(?![\\w'"])`, "g");
  for (const tag of tags(template)) {
    for (const hit of tag.body.matchAll(word)) {
      const end = hit.index + hit[0].length;
      if (GUARDED_USE.test(tag.body.slice(end))) continue;
      return positionOf(template, tag.offset + 2 + hit.index + (hit[1]?.length ?? 0));
    }
  }
  return undefined;
}

/**
 * The first tag that reads `attribute` (`.name`, `["name"]` or `[3]`) where an
 * undefined value is an error; at the value it is read from when that is
 * named (`cfg` of `cfg.missing`), else at the attribute.
 */
export function locateAttribute(template: string, attribute: string, object?: string): TemplatePosition | undefined {
  const key = attribute.replace(/^"|"$/g, "").replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const access = `(?:\\.\\s*${key}(?!\\w)|\\[\\s*(?:${key}|'${key}'|"${key}")\\s*\\])`;
  const owner = object && /^[\w.]+$/.test(object) ? object.replace(/\./g, "\\s*\\.\\s*") : undefined;
  const patterns = owner ? [new RegExp(`(?<![\\w.])${owner}\\s*${access}`, "g"), new RegExp(access, "g")] : [new RegExp(access, "g")];
  for (const pattern of patterns) {
    for (const tag of tags(template)) {
      for (const hit of tag.body.matchAll(pattern)) {
        if (GUARDED_USE.test(tag.body.slice(hit.index + hit[0].length))) continue;
        return positionOf(template, tag.offset + 2 + hit.index);
      }
    }
  }
  return undefined;
}

const OPENERS: Record<string, string> = {
  for: "endfor",
  if: "endif",
  macro: "endmacro",
  call: "endcall",
  filter: "endfilter",
  raw: "endraw",
};
const CLOSERS = new Set(Object.values(OPENERS));

export interface SyntaxProblem {
  position: TemplatePosition;
  /** What is wrong, where the tags tell (an unbalanced block); else the parser's message stands. */
  problem?: string;
}

const keywordOf = (tag: Tag) => /^\s*(\w+)/.exec(tag.body)?.[1] ?? "";

/** The tag a syntax error most likely comes from: one that fails alone, or an unbalanced block. */
export function locateSyntaxError(template: string): SyntaxProblem | undefined {
  const all = tags(template);
  for (const tag of all) {
    if (tag.kind !== "expression") continue;
    try {
      parse(tokenize(`{{${tag.body}}}`));
    } catch {
      // This tag fails alone: the one sought.
      return { position: positionOf(template, tag.offset) };
    }
  }
  const stack: Tag[] = [];
  for (const tag of all) {
    if (tag.kind !== "statement") continue;
    const keyword = keywordOf(tag);
    if (keyword === "set" && !tag.body.includes("=")) stack.push(tag);
    else if (keyword in OPENERS) stack.push(tag);
    else if (CLOSERS.has(keyword) || keyword === "endset") {
      const open = stack.pop();
      const position = positionOf(template, tag.offset);
      if (!open) return { position, problem: `\`{% ${keyword} %}\` closes no open block` };
      const expected = closerOf(keywordOf(open));
      if (expected !== keyword) {
        const at = positionOf(template, open.offset);
        return {
          position,
          problem: `\`{% ${keyword} %}\` cannot close the \`{% ${keywordOf(open)} %}\` opened at line ${at.line}, column ${at.column}: that one needs \`{% ${expected} %}\` first`,
        };
      }
    }
  }
  const unclosed = stack.pop();
  if (!unclosed) return undefined;
  const keyword = keywordOf(unclosed);
  return {
    position: positionOf(template, unclosed.offset),
    problem: `\`{% ${keyword} %}\` is never closed: the file ends before its \`{% ${closerOf(keyword)} %}\``,
  };
}

function closerOf(keyword: string): string {
  return keyword === "set" ? "endset" : (OPENERS[keyword] ?? `end${keyword}`);
}

/**
 * Maps lines of the rendered text back to lines of the template: a rendered
 * line comes from the template line it equals, or whose literal parts it
 * matches with the `{{ ... }}` filled in; among several, the next one after
 * the previous line's source (loops repeat their body).
 */
const TAG_ON_LINE = /\{\{[\s\S]*?\}\}|\{%[\s\S]*?%\}/;
const TAGS_ON_LINE = new RegExp(TAG_ON_LINE.source, "g");

export function renderedLineMap(template: string, rendered: string): Array<number | undefined> {
  const sourceLines = template.split("\n");
  const exact = new Map<string, number[]>();
  const patterns: Array<{ line: number; re: RegExp }> = [];
  sourceLines.forEach((text, index) => {
    const line = index + 1;
    // Expressions fill in; statements with text beside them (`{% raw %}...{% endraw %} x`) vanish.
    if (text.includes("{{") || (text.includes("{%") && /\S/.test(text.replace(TAGS_ON_LINE, "")))) {
      const re = text
        .split(TAG_ON_LINE)
        .map((literal) => literal.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
        .join(".*?");
      patterns.push({ line, re: new RegExp(`^${re}$`) });
    } else {
      const list = exact.get(text);
      if (list) list.push(line);
      else exact.set(text, [line]);
    }
  });
  const map: Array<number | undefined> = [undefined];
  let previous = 0;
  for (const text of rendered.split("\n")) {
    let candidates = exact.get(text);
    if (!candidates) candidates = patterns.filter((p) => p.re.test(text)).map((p) => p.line);
    const chosen = candidates.find((c) => c > previous) ?? candidates[0];
    map.push(chosen);
    if (chosen !== undefined) previous = chosen;
  }
  return map;
}

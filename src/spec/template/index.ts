/**
 * Templating of a workflow file: `default-values` and `--set` variables in,
 * rendered YAML text out, with the special tokens left as they were written.
 */
import { didYouMean } from "../../util/suggest.js";
import { DiagnosticBag } from "../diagnostics.js";
import { PROTECTED_TOKEN, TOKEN_NAMES } from "../tokens.js";
import { parseYaml } from "../yaml.js";
import { builtinClash } from "./builtins.js";
import { locateSyntaxError, locateVariable, positionOf, renderedLineMap } from "./locate.js";
import { DEFAULT_RENDER_LIMITS, renderJinja, type RenderLimits } from "./render.js";

export { DEFAULT_RENDER_LIMITS, type RenderLimits } from "./render.js";

export interface TemplateVariables {
  /** `--set k=v`: numbers become numbers. */
  set?: Record<string, string>;
  /** `--set-string k=v`: always strings. */
  setString?: Record<string, string>;
}

export interface RenderedTemplate {
  text: string;
  /** Set when rendering changed the text: maps a rendered line to its template line. */
  lineMap?: () => Array<number | undefined>;
}

const JINJA_SYNTAX = /\{\{|\{%|\{#/;
/** A special token written with spaces inside, which Jinja then tries to parse. */
const SPACED_TOKEN = /\{\{\s*(?:host|input)\s*:|\{\{\s+(?:output|workflow_id)\s*\}\}|\{\{(?:output|workflow_id)\s+\}\}/;
// Private-use markers that cannot occur in a YAML file troupe accepts (it rejects control characters).
const MARK_OPEN = "\u0001";
const MARK_CLOSE = "\u0002";

export async function renderWorkflowTemplate(
  text: string,
  variables: TemplateVariables,
  bag: DiagnosticBag,
  limits: RenderLimits = DEFAULT_RENDER_LIMITS,
): Promise<RenderedTemplate | undefined> {
  const protectedTokens: string[] = [];
  const guarded = text.replace(PROTECTED_TOKEN, (token) => `${MARK_OPEN}${protectedTokens.push(token) - 1}${MARK_CLOSE}`);
  const defaults = readDefaultValues(text, bag);
  const values = { ...defaults, ...parseSetValues(variables, bag) };
  if (bag.hasErrors) return undefined;
  if (!JINJA_SYNTAX.test(guarded)) return { text };

  const result = await renderJinja(guarded, values, limits);
  if (!result.ok) {
    reportRenderFailure(result, guarded, text, Object.keys(values), bag, limits);
    return undefined;
  }
  const restored = result.output.replace(
    new RegExp(`${MARK_OPEN}(\\d+)${MARK_CLOSE}`, "g"),
    (_m, index: string) => protectedTokens[Number(index)] ?? "",
  );
  let lineMap: Array<number | undefined> | undefined;
  return { text: restored, lineMap: () => (lineMap ??= renderedLineMap(text, restored)) };
}

function reportRenderFailure(
  result: { kind: string; message: string; variable?: string; internal?: boolean },
  guarded: string,
  original: string,
  known: string[],
  bag: DiagnosticBag,
  limits: RenderLimits,
): void {
  const start = { line: 1, column: 1 };
  switch (result.kind) {
    case "undefined": {
      const name = result.variable ?? "";
      const position = locateVariable(guarded, name) ?? start;
      const tokenHint = didYouMean(name, ["output", "workflow_id"], (s) => `the token {{${s}}}`);
      bag.error("E_TEMPLATE_UNDEFINED", [], `undefined template variable \`${name}\``, {
        position,
        hint: tokenHint ?? didYouMean(name, known) ?? `define it under default-values or pass --set ${name}=VALUE`,
      });
      return;
    }
    case "syntax": {
      // The parser's own errors say what is wrong; its internal ones (a TypeError
      // where a block is never closed) do not, and the tags then tell instead.
      const found = locateSyntaxError(guarded);
      const message = found?.problem ?? (result.internal ? "the template cannot be parsed from here" : result.message);
      bag.error("E_TEMPLATE_SYNTAX", [], `template syntax error: ${message}`, {
        position: found?.position ?? start,
        hint: SPACED_TOKEN.test(guarded)
          ? `special tokens (${TOKEN_NAMES.map((t) => `{{${t}${t.endsWith(":") ? "…" : ""}}}`).join(", ")}) must be written without inner spaces`
          : undefined,
      });
      return;
    }
    case "timeout":
      bag.error("E_TEMPLATE_TIMEOUT", [], `template rendering took longer than ${limits.timeoutMs} ms and was stopped`, {
        position: firstLoop(original) ?? start,
        hint: "look for loops over very large ranges",
      });
      return;
    case "too_large":
      bag.error(
        "E_TEMPLATE_TOO_LARGE",
        [],
        `template output exceeds the limit of ${Math.round(limits.maxOutputChars / 1024 / 1024)} MB (${result.message})`,
        {
          position: firstLoop(original) ?? start,
        },
      );
      return;
    case "too_deep":
      bag.error("E_TEMPLATE_TOO_DEEP", [], `the template is nested too deeply: ${result.message}`, {
        position: firstTag(original) ?? start,
        hint: "flatten the nesting, e.g. with `{% elif %}`, `and`/`or`, or a loop",
      });
      return;
    default:
      bag.error("E_TEMPLATE_ERROR", [], `template rendering failed: ${result.message}`, { position: start });
  }
}

function firstTag(text: string) {
  const index = text.search(/\{[%{]/);
  return index >= 0 ? positionOf(text, index) : undefined;
}

function firstLoop(text: string) {
  const index = text.search(/\{%-?\s*for\b/);
  return index >= 0 ? positionOf(text, index) : undefined;
}

/**
 * `default-values` is read before rendering: it is the one block a template
 * needs in order to render. It is taken from the text (the rest of the file
 * may not be YAML until rendered) and must itself be plain YAML.
 */
function readDefaultValues(text: string, bag: DiagnosticBag): Record<string, unknown> {
  const match = /^default-values[ \t]*:.*(?:\n(?:[ \t]+.*|[ \t]*(?:#.*)?))*$/m.exec(text);
  if (!match) return {};
  const base = positionOf(text, match.index);
  // Read like the rest of the file (alias limits included), then moved to the block's place.
  const blockBag = new DiagnosticBag();
  const parsed = parseYaml(match[0], blockBag);
  for (const d of blockBag.items) {
    const line = (d.position?.line ?? 1) + base.line - 1;
    bag.error(d.code, ["default-values"], d.code === "E_YAML_SYNTAX" ? `\`default-values\` is not plain YAML: ${d.message}` : d.message, {
      position: { line, column: d.position?.column ?? 1 },
      hint: d.hint ?? "default values cannot use template syntax",
    });
  }
  const values = (parsed?.value as Record<string, unknown> | null | undefined)?.["default-values"];
  if (values === null || values === undefined) return {};
  if (typeof values === "object" && !Array.isArray(values)) {
    const usable: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(values)) {
      const clash = builtinClash(name);
      if (clash === undefined) {
        usable[name] = value;
        continue;
      }
      const at = parsed?.locator.locate(["default-values", name], true) ?? { line: 1, column: 1 };
      bag.error("E_BAD_VARIABLE", ["default-values", name], `default-values: ${clash}`, {
        position: { line: at.line + base.line - 1, column: at.column },
        hint: "rename the variable here and where the template uses it",
      });
    }
    return usable;
  }
  bag.error("E_DEFAULT_VALUES", ["default-values"], "`default-values` must be a mapping of variable names to values", { position: base });
  return {};
}

const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function parseSetValues(variables: TemplateVariables, bag: DiagnosticBag): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const check = (name: string, flag: string) => {
    const problem = VARIABLE_NAME.test(name) ? builtinClash(name) : `\`${name}\` is not a variable name`;
    if (problem === undefined) return true;
    bag.error("E_BAD_VARIABLE", [], `${flag} ${name}=…: ${problem}`, { position: { line: 0, column: 0 } });
    return false;
  };
  for (const [name, value] of Object.entries(variables.set ?? {})) {
    if (check(name, "--set")) out[name] = /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(value.trim()) ? Number(value) : value;
  }
  for (const [name, value] of Object.entries(variables.setString ?? {})) {
    if (check(name, "--set-string")) out[name] = value;
  }
  return out;
}

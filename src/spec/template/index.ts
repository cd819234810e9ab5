/**
 * Templating of a workflow file: `default-values` and `--set` variables in,
 * rendered YAML text out, with the special tokens left as they were written.
 */
import { DiagnosticBag } from "../diagnostics.js";
import { PROTECTED_TOKEN } from "../tokens.js";
import { renderedLineMap } from "./locate.js";
import { takeRawBlocks } from "./raw.js";
import { DEFAULT_RENDER_LIMITS, renderJinja, type RenderLimits } from "./render.js";
import { reportRenderFailure } from "./report.js";
import { parseSetValues, readDefaultValues, warnUnusedSetValues, type TemplateVariables } from "./variables.js";

export { DEFAULT_RENDER_LIMITS, type RenderLimits } from "./render.js";
export type { TemplateVariables } from "./variables.js";

export interface RenderedTemplate {
  text: string;
  /** Set when rendering changed the text: maps a rendered line to its template line. */
  lineMap?: () => Array<number | undefined>;
}

const JINJA_SYNTAX = /\{\{|\{%|\{#/;
// Characters that cannot occur in a YAML file troupe accepts (it rejects control characters).
const MARK_OPEN = "\u0001";
const MARK_CLOSE = "\u0002";
/** Pads a marker to its token's width, so that columns after it stay right for error positions. */
const MARK_PAD = "\u0005";
const MARKER = new RegExp(`${MARK_OPEN}(\\d+)${MARK_CLOSE}${MARK_PAD}*`, "g");

export async function renderWorkflowTemplate(
  text: string,
  variables: TemplateVariables,
  bag: DiagnosticBag,
  limits: RenderLimits = DEFAULT_RENDER_LIMITS,
): Promise<RenderedTemplate | undefined> {
  const defaults = readDefaultValues(text, bag);
  const values = { ...defaults, ...parseSetValues(variables, bag) };
  if (bag.hasErrors) return undefined;
  const anySet = Object.keys(variables.set ?? {}).length + Object.keys(variables.setString ?? {}).length > 0;
  if (!JINJA_SYNTAX.test(text.replace(PROTECTED_TOKEN, ""))) {
    if (anySet) warnUnusedSetValues(variables, defaults, undefined, bag);
    return { text };
  }

  const raw = takeRawBlocks(text);
  const protectedTokens: string[] = [];
  const guarded = raw.template.replace(PROTECTED_TOKEN, (token) => {
    const marker = `${MARK_OPEN}${protectedTokens.push(token) - 1}${MARK_CLOSE}`;
    return marker.padEnd(token.length, MARK_PAD);
  });
  const result = await renderJinja(guarded, values, limits, anySet);
  if (!result.ok) {
    reportRenderFailure(result, guarded, text, Object.keys(values), bag, limits);
    return undefined;
  }
  if (anySet) warnUnusedSetValues(variables, defaults, result.names ?? [], bag);
  const restored = raw.restore(result.output.replace(MARKER, (_m, index: string) => protectedTokens[Number(index)] ?? ""));
  let lineMap: Array<number | undefined> | undefined;
  return { text: restored, lineMap: () => (lineMap ??= renderedLineMap(text, restored)) };
}

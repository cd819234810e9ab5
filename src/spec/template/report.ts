/** Reporting a template that did not render: what went wrong, and where in the file the user wrote. */
import { didYouMean } from "../../util/suggest.js";
import { DiagnosticBag } from "../diagnostics.js";
import { TOKEN_NAMES } from "../tokens.js";
import { locateAttribute, locateSyntaxError, locateVariable, positionOf } from "./locate.js";
import type { RenderLimits, RenderResult } from "./render.js";

/** A special token written with spaces inside, which Jinja then tries to parse. */
const SPACED_TOKEN = /\{\{\s*(?:host|input)\s*:|\{\{\s+(?:output|workflow_id)\s*\}\}|\{\{(?:output|workflow_id)\s+\}\}/;

export function reportRenderFailure(
  result: Extract<RenderResult, { ok: false }>,
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
    case "undefined_attribute": {
      const attribute = result.attribute ?? "";
      const position = locateAttribute(guarded, attribute, result.variable) ?? start;
      bag.error("E_TEMPLATE_UNDEFINED", [], `undefined template value: ${result.message}`, {
        position,
        hint: "give it a value, or guard the use with `is defined` or `| default(...)`",
      });
      return;
    }
    case "unsafe":
      bag.error("E_TEMPLATE_UNSAFE", [], `template ${result.message}`, {
        position: locateAttribute(guarded, result.attribute ?? "") ?? start,
        hint: "templates may read no attribute whose name starts with `_` (as in OSMO's sandboxed Jinja)",
      });
      return;
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

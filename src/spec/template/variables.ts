/**
 * The variables a template renders with: `default-values` (read from the text
 * before rendering) and `--set`/`--set-string`, and which of them the template
 * never mentions.
 */
import { didYouMean } from "../../util/suggest.js";
import { DiagnosticBag } from "../diagnostics.js";
import { parseYaml } from "../yaml.js";
import { builtinClash } from "./builtins.js";
import { positionOf } from "./locate.js";

export interface TemplateVariables {
  /** `--set k=v`: numbers become numbers. */
  set?: Record<string, string>;
  /** `--set-string k=v`: always strings. */
  setString?: Record<string, string>;
}

/**
 * `default-values` is read before rendering: it is the one block a template
 * needs in order to render. It is taken from the text (the rest of the file
 * may not be YAML until rendered) and must itself be plain YAML.
 */
export function readDefaultValues(text: string, bag: DiagnosticBag): Record<string, unknown> {
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

export function parseSetValues(variables: TemplateVariables, bag: DiagnosticBag): Record<string, unknown> {
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

/**
 * A `--set` the template never mentions does nothing: most likely a typo
 * (`--set seed=5` for `seeds`), which would otherwise pass silently.
 * `mentioned` is undefined when the file is no template at all.
 */
export function warnUnusedSetValues(
  variables: TemplateVariables,
  defaults: Record<string, unknown>,
  mentioned: readonly string[] | undefined,
  bag: DiagnosticBag,
): void {
  const used = new Set(mentioned ?? []);
  const candidates = [...new Set([...used, ...Object.keys(defaults)])];
  for (const [flag, values] of [
    ["--set", variables.set],
    ["--set-string", variables.setString],
  ] as const) {
    for (const [name, value] of Object.entries(values ?? {})) {
      if (used.has(name)) continue;
      const given = `${flag} ${name}=${value.length > 40 ? `${value.slice(0, 40)}…` : value}`;
      const message =
        mentioned === undefined
          ? `${given}: the file uses no template variables, so it has no effect`
          : `${given}: the template never uses \`${name}\`, so it has no effect`;
      bag.warning("W_UNUSED_VARIABLE", [], message, {
        position: { line: 0, column: 0 },
        hint: didYouMean(
          name,
          candidates.filter((c) => c !== name),
        ),
      });
    }
  }
}

/**
 * Diagnostics: every problem found in a workflow file, with a stable code, the
 * spec path it concerns and (once located) its line and column in the file the
 * user wrote. Validation collects all of them instead of stopping at the first.
 */

import type { SuggestionBudget } from "../util/suggest.js";

export type Severity = "error" | "warning";

/** A path into the parsed document: mapping keys and sequence indices. */
export type SpecPath = ReadonlyArray<string | number>;

export interface Diagnostic {
  severity: Severity;
  /** Stable machine-readable code: `E_...` for errors, `W_...` for warnings. */
  code: string;
  /** Rendered path, e.g. `workflow.groups[0].tasks[1].lead`; empty for the file itself. */
  path: string;
  /** 1-based line and column in the original file; 0 when the problem has no place. */
  line: number;
  column: number;
  message: string;
  hint?: string;
}

/** A diagnostic before it has been given a place in the source. */
export interface PendingDiagnostic {
  severity: Severity;
  code: string;
  path: SpecPath;
  message: string;
  /**
   * A hint, or how to make one: computed only for the diagnostics reported
   * (see MAX_DIAGNOSTICS), with one suggestion budget for all of them.
   */
  hint?: string | LazyHint;
  /** Point at the mapping key itself rather than its value (unknown fields, duplicates). */
  atKey?: boolean;
  /** A place already known (template and YAML syntax errors carry their own). */
  position?: { line: number; column: number };
  /** Whether `position` is in the file as written (default) or in the rendered template. */
  space?: "source" | "rendered";
  /**
   * Another place the message speaks of (the first use of a duplicate name):
   * once placed, `{at}` in the message becomes its `line:column`.
   */
  related?: SpecPath;
}

export type LazyHint = (budget: SuggestionBudget) => string | undefined;

/** Beyond this many problems, the rest are counted, not listed (nor given hints). */
export const MAX_DIAGNOSTICS = 1000;

export function formatPath(path: SpecPath): string {
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(segment)) out += out === "" ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

/** Collects pending diagnostics in the order they are found. */
export class DiagnosticBag {
  readonly items: PendingDiagnostic[] = [];

  error(code: string, path: SpecPath, message: string, extra: Partial<PendingDiagnostic> = {}): void {
    this.items.push({ severity: "error", code, path, message, ...extra });
  }

  warning(code: string, path: SpecPath, message: string, extra: Partial<PendingDiagnostic> = {}): void {
    this.items.push({ severity: "warning", code, path, message, ...extra });
  }

  get hasErrors(): boolean {
    return this.items.some((d) => d.severity === "error");
  }
}

/**
 * spec/: workflow file bytes + variables -> rendered, parsed, validated
 * WorkflowSpec, with every problem found reported at once.
 */
import { dirname } from "node:path";
import { SuggestionBudget } from "../util/suggest.js";
import { DiagnosticBag, formatPath, MAX_DIAGNOSTICS, type Diagnostic, type PendingDiagnostic, type Severity } from "./diagnostics.js";
import { reportSchemaIssues } from "./schema-issues.js";
import { WorkflowFileSchema, type WorkflowSpec } from "./schema.js";
import { renderWorkflowTemplate, type RenderLimits, type TemplateVariables } from "./template/index.js";
import { positionOf } from "./template/locate.js";
import { checkExitActions } from "./rules/exit-actions.js";
import { checkFiles } from "./rules/files.js";
import { checkDataUrls } from "./rules/data-urls.js";
import { checkInputs } from "./rules/inputs.js";
import { checkNotImplemented } from "./rules/not-implemented.js";
import { checkLeads, checkNames, checkResourceNames, checkTasksOrGroups } from "./rules/structure.js";
import { checkTokens } from "./rules/tokens.js";
import { buildView } from "./rules/view.js";
import { parseYaml, type SourceLocator } from "./yaml.js";

export const MAX_SPEC_BYTES = 10 * 1024 * 1024;

export interface LoadOptions {
  /** Directory `localpath` files are read from (the spec file's); no check when absent. */
  baseDir?: string;
  variables?: TemplateVariables;
  /** The retry limit the workflow will run with (for warnings about RESCHEDULE). */
  maxRetries?: number;
  renderLimits?: RenderLimits;
  maxBytes?: number;
  /** `source` is only the start of the file: its reader stopped past `maxBytes`. */
  truncated?: boolean;
}

export interface LoadResult {
  ok: boolean;
  /** Present when there are no errors. */
  spec?: WorkflowSpec;
  diagnostics: Diagnostic[];
  /** Problems beyond the first MAX_DIAGNOSTICS: counted (in the last diagnostic's message too), not listed. */
  omitted?: { errors: number; warnings: number };
  /** The file's text after templating (tokens as written), when it rendered; valid or not. */
  rendered?: string;
}

export async function loadWorkflowSpec(source: Uint8Array | string, options: LoadOptions = {}): Promise<LoadResult> {
  const bag = new DiagnosticBag();
  const text = decodeSource(source, options.maxBytes ?? MAX_SPEC_BYTES, bag, options.truncated === true);
  if (text === undefined) return finish(bag, undefined, undefined);

  const rendered = await renderWorkflowTemplate(text, options.variables ?? {}, bag, options.renderLimits);
  if (!rendered) return finish(bag, undefined, undefined);
  return { ...validateRendered(rendered.text, rendered.lineMap, bag, options), rendered: rendered.text };
}

function validateRendered(text: string, lineMap: (() => Array<number | undefined>) | undefined, bag: DiagnosticBag, options: LoadOptions) {
  const parsed = parseYaml(text, bag);
  const place = placer(parsed?.locator, lineMap);
  if (!parsed) return finish(bag, place, undefined);

  const root = parsed.value;
  if (root === null || root === undefined) {
    bag.error("E_EMPTY_FILE", [], "the file is empty", {
      hint: "a workflow file starts with `workflow:`",
      position: { line: 1, column: 1 },
    });
    return finish(bag, place, undefined);
  }
  if (typeof root !== "object" || Array.isArray(root)) {
    bag.error("E_NOT_A_MAPPING", [], "the file must be a YAML mapping with a `workflow:` key", { position: { line: 1, column: 1 } });
    return finish(bag, place, undefined);
  }
  const result = WorkflowFileSchema.safeParse(root);
  if (!result.success) reportSchemaIssues(result.error.issues, root, bag);
  const view = buildView(root);
  if (view) {
    checkTasksOrGroups(view, bag);
    checkLeads(view, bag);
    checkNames(view, bag);
    checkResourceNames(view, bag);
    checkInputs(view, bag);
    checkDataUrls(view, bag);
    checkTokens(view, bag, options.baseDir);
    checkFiles(view, bag, options.baseDir);
    checkExitActions(view, bag, options.maxRetries ?? 0);
    checkNotImplemented(view, bag);
  }
  return finish(bag, place, result.success ? result.data : undefined);
}

export function baseDirOf(file: string): string {
  return dirname(file);
}

function formatMiB(bytes: number): string {
  return `${Math.round((bytes / 1024 / 1024) * 100) / 100} MiB`;
}

function decodeSource(source: Uint8Array | string, maxBytes: number, bag: DiagnosticBag, truncated: boolean): string | undefined {
  const size = typeof source === "string" ? Buffer.byteLength(source) : source.byteLength;
  const start = { position: { line: 1, column: 1 } };
  if (size > maxBytes || truncated) {
    const has = truncated
      ? `more than ${maxBytes.toLocaleString("en-US")} bytes (reading stopped there)`
      : `${size.toLocaleString("en-US")} bytes`;
    bag.error("E_FILE_TOO_LARGE", [], `the file has ${has}; the limit is ${maxBytes.toLocaleString("en-US")} (${formatMiB(maxBytes)})`, {
      ...start,
      hint: "generate large workflows with template loops instead",
    });
    return undefined;
  }
  let text: string;
  if (typeof source === "string") {
    text = source;
  } else {
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(source);
    } catch {
      const bad = firstInvalidUtf8(source);
      const before = new TextDecoder("utf-8").decode(source.subarray(0, bad));
      bag.error(
        "E_INVALID_UTF8",
        [],
        `the file is not valid UTF-8 (byte 0x${source[bad]?.toString(16).padStart(2, "0")} at offset ${bad})`,
        {
          position: positionOf(before, before.length),
          hint: "save the file as UTF-8",
        },
      );
      return undefined;
    }
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const control = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.exec(text);
  if (control) {
    bag.error(
      "E_CONTROL_CHARACTER",
      [],
      `the file contains the control character U+${control[0].charCodeAt(0).toString(16).padStart(4, "0")}`,
      {
        position: positionOf(text, control.index),
      },
    );
    return undefined;
  }
  return text;
}

/**
 * Offset of the first byte that is not valid UTF-8: decode leniently, then walk
 * the text and the bytes together to the first replacement character that the
 * file did not itself contain (EF BF BD).
 */
function firstInvalidUtf8(bytes: Uint8Array): number {
  const text = new TextDecoder("utf-8").decode(bytes);
  let offset = 0;
  for (const char of text) {
    const cp = char.codePointAt(0) as number;
    if (cp === 0xfffd && !(bytes[offset] === 0xef && bytes[offset + 1] === 0xbf && bytes[offset + 2] === 0xbd)) return offset;
    offset += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
  }
  return offset;
}

type Place = { line: number; column: number; note?: string };
/** A diagnostic's place; undefined when it is past offset `within` of the file (which was read no further). */
type Placer = (d: PendingDiagnostic, within: number) => Place | undefined;

/** Gives pending diagnostics their place in the file the user wrote. */
function placer(locator: SourceLocator | undefined, lineMap: (() => Array<number | undefined>) | undefined): Placer {
  return (d, within) => {
    if (d.position && d.space !== "rendered") return d.position;
    // A rendered template's lines map back out of order: it is read whole.
    const rendered =
      d.position ?? (locator ? locator.locateWithin(d.path, d.atKey ?? false, lineMap ? Infinity : within) : { line: 1, column: 1 });
    if (!rendered || !lineMap) return rendered;
    const line = lineMap()[rendered.line];
    return line === undefined
      ? { ...rendered, note: ` (at line ${rendered.line} of the rendered template)` }
      : { line, column: rendered.column };
  };
}

/** How much of a file with very many problems is read first to place the first MAX_DIAGNOSTICS (then 8 times more). */
const FIRST_READ = 256 * 1024;

function finish(bag: DiagnosticBag, place: Placer | undefined, spec: WorkflowSpec | undefined): LoadResult {
  // Only the first MAX_DIAGNOSTICS problems by place are listed, made into diagnostics and given hints;
  // the file is read for places only as far as it takes to know which they are.
  let placed: Array<{ pending: PendingDiagnostic; at: Place | undefined }> = [];
  for (let within = bag.items.length > MAX_DIAGNOSTICS ? FIRST_READ : Infinity; ; within *= 8) {
    placed = bag.items.map((pending) => ({ pending, at: place ? place(pending, within) : (pending.position ?? { line: 0, column: 0 }) }));
    const beyond = placed.reduce((n, p) => n + (p.at === undefined ? 1 : 0), 0);
    if (beyond === 0 || placed.length - beyond >= MAX_DIAGNOSTICS || within > MAX_SPEC_BYTES * 100) break;
  }
  const located = placed.filter((p): p is { pending: PendingDiagnostic; at: Place } => p.at !== undefined);
  located.sort((a, b) => a.at.line - b.at.line || a.at.column - b.at.column || a.pending.code.localeCompare(b.pending.code));
  const budget = new SuggestionBudget();
  const diagnostics = located.slice(0, MAX_DIAGNOSTICS).map(({ pending: d, at }): Diagnostic => {
    const out: Diagnostic = {
      severity: d.severity,
      code: d.code,
      path: formatPath(d.path),
      line: at.line,
      column: at.column,
      message: withRelatedPlace(d, place) + (at.note ?? ""),
    };
    const hint = typeof d.hint === "function" ? d.hint(budget) : d.hint;
    if (hint !== undefined) out.hint = hint;
    return out;
  });
  const shown = new Set(located.slice(0, MAX_DIAGNOSTICS).map((p) => p.pending));
  const more = bag.items.filter((d) => !shown.has(d)).map((d) => d.severity);
  const ok = !bag.hasErrors;
  if (more.length === 0) return { ok, spec: ok ? spec : undefined, diagnostics };
  diagnostics.push(moreProblems(more));
  const errors = more.filter((s) => s === "error").length;
  return { ok, spec: ok ? spec : undefined, diagnostics, omitted: { errors, warnings: more.length - errors } };
}

function withRelatedPlace(d: PendingDiagnostic, place: Placer | undefined): string {
  if (d.related === undefined) return d.message;
  const at = place?.({ ...d, path: d.related, position: undefined, atKey: false }, Infinity);
  return d.message.replace("{at}", at ? `${at.line}:${at.column}` : "?");
}

/** The last line of a long report: how many problems were left out, and of which severity. */
function moreProblems(rest: Severity[]): Diagnostic {
  const errors = rest.filter((s) => s === "error").length;
  const count = (n: number, word: string) => `${n.toLocaleString("en-US")} ${word}${n === 1 ? "" : "s"}`;
  return {
    severity: errors > 0 ? "error" : "warning",
    code: errors > 0 ? "E_MORE_PROBLEMS" : "W_MORE_PROBLEMS",
    path: "",
    line: 0,
    column: 0,
    message: `... and ${count(rest.length, "more problem")} (${count(errors, "error")}, ${count(rest.length - errors, "warning")}), not listed: only the first ${MAX_DIAGNOSTICS.toLocaleString("en-US")} are`,
    hint: "fix these first; the same mistake is often repeated",
  };
}

/**
 * The server's diagnostics (1-based line and column in the file as submitted) as the editor's marks: a range in
 * the document from the column to the end of its line; a problem with no place (line 0) marks the first line.
 */
export interface ServerDiagnostic {
  severity: "error" | "warning";
  code: string;
  path: string;
  line: number;
  column: number;
  message: string;
  hint?: string;
}

export interface EditorMark {
  from: number;
  to: number;
  severity: "error" | "warning";
  message: string;
  /** The 1-based line the mark is on. */
  line: number;
}

export function marksOf(text: string, diagnostics: readonly ServerDiagnostic[]): EditorMark[] {
  const starts = [0];
  for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) starts.push(i + 1);
  return diagnostics.map((d) => {
    const line = Math.min(Math.max(d.line, 1), starts.length);
    const lineStart = starts[line - 1]!;
    const lineEnd = line < starts.length ? starts[line]! - 1 : text.length;
    const from = Math.min(lineStart + Math.max(d.column - 1, 0), lineEnd);
    const where = d.path ? `${d.path}: ` : "";
    const hint = d.hint ? ` (${d.hint})` : "";
    return { from, to: Math.max(lineEnd, from), severity: d.severity, message: `${where}${d.message}${hint} [${d.code}]`, line };
  });
}

/**
 * The page's variables, one NAME=VALUE a line (as `--set NAME=VALUE`), with the lines that are not: blank lines and
 * lines starting with # are skipped.
 */
export function parseVariables(text: string): { set: Record<string, string>; problems: string[] } {
  const set: Record<string, string> = {};
  const problems: string[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (match) set[match[1]!] = match[2]!;
    else problems.push(`variables, line ${i + 1}: "${line}" is not NAME=VALUE`);
  });
  return { set, problems };
}

/** Strings of a task as the engine needs them: `$(VAR)` expanded, tokens split out. */
import { normalizeName, tokenizeString, type TokenPart } from "../spec/index.js";
import type { TokenizedText } from "./types.js";

/**
 * Kubernetes' rule for command and args: `$(VAR)` becomes the value of VAR
 * from the task's environment, `$$(VAR)` stays as the literal `$(VAR)`, and a
 * reference to an undefined variable is left as written.
 */
export function expandEnvironmentReferences(value: string, environment: Readonly<Record<string, string>>): string {
  if (!value.includes("$(")) return value;
  return value.replace(
    /\$\$\(([A-Za-z_][A-Za-z0-9_]*)\)|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g,
    (whole, escaped: string | undefined, name: string | undefined) => {
      if (escaped !== undefined) return `$(${escaped})`;
      // Own keys only: `$(constructor)` is not defined just because objects have one.
      return Object.hasOwn(environment, name as string) ? (environment[name as string] as string) : whole;
    },
  );
}

/**
 * Split a string into text and tokens; `{{input:NAME}}` is resolved to its
 * index among the task's inputs so the engine needs only one form.
 */
export function tokenize(value: string, inputNames: readonly (string | undefined)[]): TokenizedText {
  const { parts } = tokenizeString(value);
  if (parts.length === 1 && typeof parts[0] === "string") return parts;
  return parts.map((part): TokenPart => {
    if (typeof part === "string" || part.kind !== "input" || !("task" in part)) return part;
    const wanted = normalizeName(part.task);
    const index = inputNames.findIndex((n) => n !== undefined && normalizeName(n) === wanted);
    if (index < 0) throw new Error(`{{input:${part.task}}} was not validated`);
    return { kind: "input", index };
  });
}

/** The plain text of a tokenized string with every token written back as `{{...}}`. */
export function renderTokenized(text: TokenizedText): string {
  return text
    .map((part) => {
      if (typeof part === "string") return part;
      switch (part.kind) {
        case "output":
        case "workflow_id":
          return `{{${part.kind}}}`;
        case "host":
          return `{{host:${part.task}}}`;
        case "input":
          return "index" in part ? `{{input:${part.index}}}` : `{{input:${part.task}}}`;
      }
    })
    .join("");
}

/**
 * `localpath` files are read where the spec file is (the client, at submit
 * time) and carried inside the spec from then on. A text file becomes
 * `contents`, so that its tokens (`{{host:...}}`, `{{output}}`, ...) are
 * substituted as in an inline file, as OSMO does; other files travel as base64
 * and are used as they are: binary ones, and text with a `{{...}}` that is no
 * token (`docker inspect -f '{{.Id}}'`), which an inline file may not have.
 */
import { readFileSync, statSync } from "node:fs";
import { resolve } from "node:path";
import type { TaskSpec, WorkflowSpec } from "./schema.js";
import { tokenizeString } from "./tokens.js";

/** A localpath file travels inlined in a spec the server takes up to 10 MiB of. */
export const MAX_LOCALPATH_BYTES = 7 * 1024 * 1024;

/** A file's text when it is UTF-8 text (no NUL), else undefined (binary, missing, too large). */
export function readLocalText(baseDir: string, localpath: string): string | undefined {
  const absolute = resolve(baseDir, localpath);
  try {
    const stats = statSync(absolute);
    if (!stats.isFile() || stats.size > MAX_LOCALPATH_BYTES) return undefined;
    return textOf(readFileSync(absolute));
  } catch {
    // Missing or unreadable: not inlined (the validator reports a localpath that does not exist).
    return undefined;
  }
}

function textOf(bytes: Buffer): string | undefined {
  if (bytes.includes(0)) return undefined;
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    // Not UTF-8: not text.
    return undefined;
  }
}

export function inlineLocalFiles(spec: WorkflowSpec, baseDir: string): WorkflowSpec {
  const inlineTask = (task: TaskSpec): TaskSpec => {
    if (!task.files?.some((f) => f.localpath !== undefined)) return task;
    return {
      ...task,
      files: task.files.map((file) => {
        if (file.localpath === undefined) return file;
        const bytes = readFileSync(resolve(baseDir, file.localpath));
        const text = textOf(bytes);
        return text !== undefined && tokenizeString(text).unknown.length === 0
          ? { path: file.path, contents: text }
          : { path: file.path, contents: bytes.toString("base64"), base64: true };
      }),
    };
  };
  const workflow = spec.workflow;
  return {
    ...spec,
    workflow: {
      ...workflow,
      tasks: workflow.tasks?.map(inlineTask),
      groups: workflow.groups?.map((g) => ({ ...g, tasks: g.tasks.map(inlineTask) })),
    },
  };
}

const END_RAW = /\{%-?\s*endraw\s*-?%\}/g;

/**
 * A spec that was already rendered (its variables applied, its files inlined),
 * made into a template that renders to itself: the server renders what it is
 * sent, and the text of an inlined file is not a template. Each line keeps its
 * number (the tags sit in YAML comments of their own).
 */
export function asRenderedTemplate(yamlText: string): string {
  // A raw block ends at the first `{% endraw %}`: one in the text is output by an expression.
  const body = yamlText.replace(END_RAW, (tag) => `{% endraw %}{{ ${JSON.stringify(tag)} }}{% raw %}`);
  return `# {% raw %}\n${body}\n# {% endraw %}\n`;
}

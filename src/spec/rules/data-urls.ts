/**
 * `url:` inputs and outputs, and checkpoints' `url`, name an object store
 * troupe can transfer (model/storage-url.ts: `s3://BUCKET/PATH`); a
 * checkpoint's `path` is absolute (a path in the task); and every `regex` is
 * one JavaScript can compile (troupe matches it as OSMO does:
 * from the start of each file's path relative to the URL or directory).
 */
import { parseStorageUrl } from "../../model/index.js";
import type { DiagnosticBag, SpecPath } from "../diagnostics.js";
import { asList, asText, isMap, type WorkflowView } from "./view.js";

/** A token (`{{workflow_id}}`) stands for one path segment while the URL's shape is checked. */
const TOKEN = /\{\{[^}]*\}\}/g;

function checkUrl(bag: DiagnosticBag, value: unknown, path: SpecPath): void {
  const url = asText(value);
  if (url === undefined) return;
  const parsed = parseStorageUrl(url.replace(TOKEN, "token"));
  if (!parsed.ok)
    bag.error("E_DATA_URL", path, parsed.reason, {
      hint: "write the object store's URL as s3://BUCKET/PATH (the bucket a data credential names)",
    });
}

function checkRegex(bag: DiagnosticBag, value: unknown, path: SpecPath): void {
  const regex = asText(value);
  if (regex === undefined) return;
  try {
    new RegExp(regex);
  } catch (error) {
    bag.error("E_BAD_REGEX", path, `\`${regex}\` is not a regular expression: ${(error as Error).message}`, {
      hint: "it is matched from the start of each file's path, e.g. `.*\\.csv$`",
    });
  }
}

export function checkDataUrls(view: WorkflowView, bag: DiagnosticBag): void {
  for (const task of view.tasks) {
    asList(task.raw.inputs).forEach((input, i) => {
      if (!isMap(input)) return;
      checkUrl(bag, input.url, [...task.path, "inputs", i, "url"]);
      checkRegex(bag, input.regex, [...task.path, "inputs", i, "regex"]);
    });
    asList(task.raw.outputs).forEach((output, i) => {
      if (!isMap(output)) return;
      checkUrl(bag, output.url, [...task.path, "outputs", i, "url"]);
      checkRegex(bag, output.regex, [...task.path, "outputs", i, "regex"]);
    });
    const checkpoints = Array.isArray(task.raw.checkpoint) ? task.raw.checkpoint : [task.raw.checkpoint];
    checkpoints.forEach((checkpoint, i) => {
      if (!isMap(checkpoint)) return;
      const at = Array.isArray(task.raw.checkpoint) ? [...task.path, "checkpoint", i] : [...task.path, "checkpoint"];
      checkUrl(bag, checkpoint.url, [...at, "url"]);
      checkRegex(bag, checkpoint.regex, [...at, "regex"]);
      const path = asText(checkpoint.path);
      if (path !== undefined && !path.startsWith("/") && !path.startsWith("{{"))
        bag.error("E_CHECKPOINT_PATH", [...at, "path"], `checkpoint path \`${path}\` is not absolute`, {
          hint: "write the directory the task writes its checkpoints to as an absolute path, e.g. /osmo/data/output/checkpoints or {{output}}/checkpoints",
        });
    });
  }
}

/** `files:` entries: one source each, unique usable paths (file-paths.ts), local files that exist. */
import { realpathSync, statSync } from "node:fs";
import { isAbsolute, relative, resolve, sep } from "node:path";
import type { DiagnosticBag } from "../diagnostics.js";
import { MAX_LOCALPATH_BYTES } from "../inline.js";
import { checkFilePath, checkNestedFilePaths } from "./file-paths.js";
import { asList, asText, isMap, type WorkflowView } from "./view.js";

const BASE64 = /^[A-Za-z0-9+/\s]*={0,2}\s*$/;

export function checkFiles(view: WorkflowView, bag: DiagnosticBag, baseDir: string | undefined): void {
  for (const task of view.tasks) {
    const seen = new Map<string, number>();
    asList(task.raw.files).forEach((file, i) => {
      if (!isMap(file)) return;
      const path = [...task.path, "files", i];
      const hasContents = file.contents !== undefined;
      const localpath = asText(file.localpath);
      if (hasContents === (localpath !== undefined)) {
        bag.error("E_FILE_SOURCE", path, "a file needs exactly one of `contents` and `localpath`");
      }
      const target = asText(file.path);
      const normal = target === undefined ? undefined : checkFilePath(target, [...path, "path"], bag);
      if (target !== undefined && normal !== undefined) {
        const earlier = seen.get(normal);
        if (earlier !== undefined) {
          bag.error("E_DUPLICATE_FILE_PATH", [...path, "path"], `file path \`${target}\` is also written by files[${earlier}]`);
        } else {
          seen.set(normal, i);
        }
      }
      if (file.base64 === true && typeof file.contents === "string" && !BASE64.test(file.contents)) {
        bag.error("E_BAD_BASE64", [...path, "contents"], "`contents` is marked `base64: true` but is not valid base64");
      }
      if (localpath !== undefined && baseDir !== undefined) checkLocalPath(localpath, baseDir, [...path, "localpath"], bag);
    });
    checkNestedFilePaths(seen, [...task.path, "files"], bag);
  }
}

function checkLocalPath(written: string, baseDir: string, path: (string | number)[], bag: DiagnosticBag): void {
  const absolute = resolve(baseDir, written);
  let file: string;
  try {
    const stats = statSync(absolute);
    if (!stats.isFile()) bag.error("E_LOCALPATH_NOT_FILE", path, `localpath \`${written}\` is not a regular file (${absolute})`);
    else if (stats.size > MAX_LOCALPATH_BYTES)
      bag.error(
        "E_LOCALPATH_TOO_LARGE",
        path,
        `localpath \`${written}\` has ${stats.size} bytes; a file travels inlined in the spec, at most ${MAX_LOCALPATH_BYTES}`,
        {
          hint: "pass large data as an input (the output of a task) instead",
        },
      );
    file = realpathSync(absolute);
  } catch {
    bag.error("E_LOCALPATH_NOT_FOUND", path, `localpath \`${written}\` does not exist (looked for ${absolute})`, {
      hint: "a localpath is read relative to the directory of the spec file",
    });
    return;
  }
  const folder = tryRealpath(baseDir);
  const inside = relative(folder, file);
  if (inside === ".." || inside.startsWith(`..${sep}`) || isAbsolute(inside))
    bag.warning("W_LOCALPATH_OUTSIDE", path, `localpath \`${written}\` reads ${file}, outside the spec file's folder (${folder})`, {
      hint: "the file is sent inlined in the workflow's spec, which other users of a server may read; keep such files beside the spec",
    });
}

function tryRealpath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    // Not there (yet): its path as written stands for it.
    return resolve(path);
  }
}

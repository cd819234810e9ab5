/** `files:` entries: one source each, unique absolute paths outside /osmo, local files that exist. */
import { statSync } from "node:fs";
import { posix, resolve } from "node:path";
import type { DiagnosticBag } from "../diagnostics.js";
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
      if (target !== undefined) {
        const normal = posix.normalize(target);
        if (!posix.isAbsolute(target)) {
          bag.error("E_FILE_PATH", [...path, "path"], `file path \`${target}\` must be absolute`, {
            hint: `for example /tmp/${posix.basename(target)}`,
          });
        } else if (normal === "/osmo" || normal.startsWith("/osmo/")) {
          bag.error("E_RESERVED_PATH", [...path, "path"], `file path \`${target}\` is under /osmo, which is reserved`);
        } else if (normal.endsWith("/")) {
          bag.error("E_FILE_PATH", [...path, "path"], `file path \`${target}\` names a directory, not a file`);
        }
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
      if (localpath !== undefined && baseDir !== undefined)
        checkLocalPath(localpath, resolve(baseDir, localpath), [...path, "localpath"], bag);
    });
  }
}

function checkLocalPath(written: string, absolute: string, path: (string | number)[], bag: DiagnosticBag): void {
  try {
    const stat = statSync(absolute);
    if (!stat.isFile()) bag.error("E_LOCALPATH_NOT_FILE", path, `localpath \`${written}\` is not a regular file (${absolute})`);
  } catch {
    bag.error("E_LOCALPATH_NOT_FOUND", path, `localpath \`${written}\` does not exist (looked for ${absolute})`, {
      hint: "a localpath is read relative to the directory of the spec file",
    });
  }
}

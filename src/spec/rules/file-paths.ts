/**
 * Where a `files:` entry may be written: a file at an absolute path that the
 * runtimes can bind on every engine (podman's Docker-compatible API splits a
 * mount at `:` and at `,`), not a directory every host and image has, and not
 * under the kernel's file systems or /osmo.
 */
import { posix } from "node:path";
import type { DiagnosticBag, SpecPath } from "../diagnostics.js";

/** Directories on every host and in every image: a file cannot be bound over them. */
const DIRECTORIES = new Set(
  ["/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/media", "/mnt", "/opt", "/proc", "/root", "/run", "/sbin"]
    .concat(["/srv", "/sys", "/tmp", "/usr", "/usr/bin", "/usr/lib", "/usr/local", "/usr/local/bin", "/usr/sbin", "/usr/share"])
    .concat(["/var", "/var/lib", "/var/log", "/var/run", "/var/tmp"]),
);
/** Kernel file systems (and troupe's own /osmo): nothing of a task's may be written there. */
const RESERVED = ["/osmo", "/proc", "/sys", "/dev"];

/** Reports what is wrong with a file's `path`; returns the normalised path when it is usable. */
export function checkFilePath(target: string, path: SpecPath, bag: DiagnosticBag): string | undefined {
  const error = (code: string, message: string, hint?: string) => {
    bag.error(code, path, `file path \`${target}\` ${message}`, hint === undefined ? {} : { hint });
    return undefined;
  };
  const name = posix.basename(target) || "file.txt";
  if (!posix.isAbsolute(target)) return error("E_FILE_PATH", "must be absolute", `for example /tmp/${name}`);
  const normal = posix.normalize(target);
  const reserved = RESERVED.find((dir) => normal === dir || normal.startsWith(`${dir}/`));
  if (reserved === "/osmo") return error("E_RESERVED_PATH", "is under /osmo, which is reserved");
  if (reserved !== undefined) return error("E_RESERVED_PATH", `is under ${reserved}, a kernel file system`);
  if (target.split("/").includes("..")) return error("E_FILE_PATH", "contains a `..` segment", "write the path without `..`");
  const bad = /[:,]|[\u0000-\u001f\u007f]/.exec(target);
  if (bad) {
    const what = bad[0] === ":" || bad[0] === "," ? `\`${bad[0]}\`` : "a control character";
    return error("E_FILE_PATH", `contains ${what}, which a container's mount cannot carry`, "rename the file");
  }
  const bare = normal === "/" ? normal : normal.replace(/\/+$/, "");
  const example = `for example ${bare === "/" ? "" : bare}/file.txt`;
  if (DIRECTORIES.has(bare))
    return error("E_FILE_PATH_DIRECTORY", "is a standard directory on hosts and in images; a file cannot be written over it", example);
  if (target.endsWith("/")) return error("E_FILE_PATH", "names a directory, not a file", example);
  return normal;
}

/** A file written where another entry needs a directory (`/a` and `/a/b`): reported at the deeper one. */
export function checkNestedFilePaths(paths: Map<string, number>, files: SpecPath, bag: DiagnosticBag): void {
  if (paths.size < 2) return;
  for (const [path, index] of paths) {
    for (let dir = posix.dirname(path); dir !== "/"; dir = posix.dirname(dir)) {
      const other = paths.get(dir);
      if (other === undefined) continue;
      bag.error(
        "E_FILE_PATH_CONFLICT",
        [...files, index, "path"],
        `file path \`${path}\` is under \`${dir}\`, which files[${other}] writes as a file`,
      );
      break;
    }
  }
}

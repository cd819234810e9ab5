/**
 * Deciding what a transfer moves, without moving it: which objects under a
 * URL go where in a directory, which files of a directory go to which keys,
 * each filtered by the `regex` as OSMO filters (matched from the start of the
 * path relative to the URL or directory, as Python's `re.match`).
 */
import { isAbsolute, join } from "node:path";
import { DataTransferError } from "../port/index.js";

/** `regex` as a test of a relative path: anchored at its start, not at its end. */
export function pathFilter(regex: string | undefined): (relative: string) => boolean {
  if (regex === undefined) return () => true;
  const sticky = new RegExp(regex, "y");
  return (relative) => {
    sticky.lastIndex = 0;
    return sticky.test(relative);
  };
}

/** A URL's path as a listing prefix: "" for the whole bucket, else ending in "/". */
export function listingPrefix(path: string): string {
  const trimmed = path.replace(/\/+$/, "");
  return trimmed === "" ? "" : `${trimmed}/`;
}

/**
 * Where object `key` (listed under `prefix`) goes in `dir`: its path relative
 * to the prefix. Undefined for a "directory" marker (a key ending in "/").
 * A key that would land outside `dir` (a `..` segment, an empty one) fails
 * the download rather than write there.
 */
export function downloadTarget(dir: string, prefix: string, key: string, code: number): string | undefined {
  if (key.endsWith("/")) return undefined;
  const relative = key.slice(prefix.length);
  const parts = relative.split("/");
  if (isAbsolute(relative) || parts.some((p) => p === "" || p === "." || p === ".."))
    throw new DataTransferError(code, `object key \`${key}\` cannot be a file under the input directory (an empty, . or .. segment)`);
  return join(dir, ...parts);
}

/** The key a file at `relative` (its path under the output directory, "/"-separated) is uploaded to under the URL's path. */
export function uploadKey(path: string, relative: string): string {
  return listingPrefix(path) + relative;
}

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

/** S3's limits on a multipart upload: parts of at least 5 MiB (but the last), at most 10,000 of them. */
export const MIN_PART_BYTES = 5 * 1024 * 1024;
export const MAX_PARTS = 10_000;

export interface FilePart {
  /** 1-based, as S3 numbers parts. */
  number: number;
  offset: number;
  length: number;
}

/**
 * How a file of `size` bytes goes up: one PUT when it fits in one part of
 * `partBytes`, else parts of `partBytes` (grown, in whole MiB, when the file
 * would need more than S3's 10,000 parts), the last one shorter.
 */
export function uploadParts(size: number, partBytes: number): { single: true } | { single: false; partBytes: number; parts: FilePart[] } {
  if (size <= partBytes) return { single: true };
  const mib = 1024 * 1024;
  const grown = Math.max(partBytes, MIN_PART_BYTES, Math.ceil(size / MAX_PARTS / mib) * mib);
  const parts: FilePart[] = [];
  for (let offset = 0, number = 1; offset < size; offset += grown, number++)
    parts.push({ number, offset, length: Math.min(grown, size - offset) });
  return { single: false, partBytes: grown, parts };
}

/** A ranged answer's bytes: `start` to `end` (both included) of an object of `total` bytes (undefined: "*", not said). */
export interface ContentRange {
  start: number;
  end: number;
  total: number | undefined;
}

/** HTTP's Content-Range of a ranged answer ("bytes 100-199/200"), or undefined when there is none or it is not one. */
export function parseContentRange(header: string | undefined): ContentRange | undefined {
  const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header?.trim() ?? "");
  if (!match) return undefined;
  const [start, end] = [Number(match[1]), Number(match[2])];
  if (end < start) return undefined;
  return { start, end, total: match[3] === "*" ? undefined : Number(match[3]) };
}

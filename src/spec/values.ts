/**
 * Parsers for the small value languages inside a workflow file: names, sizes,
 * durations, exit-code ranges and labels. Each returns a value or a reason, so
 * the schema (which reports) and the planner (which converts) share one rule.
 */

export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };
const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const fail = <T>(reason: string): Parsed<T> => ({ ok: false, reason });

export const NAME_PATTERN = /^[a-zA-Z]([a-zA-Z0-9_-]*[a-zA-Z0-9])?$/;
export const NAME_MAX_LENGTH = 64;
/** Task names the reference system keeps for itself. */
export const RESERVED_NAMES = ["osmo-ctrl"];

/** Names of tasks and groups share one namespace: case-insensitive, `_` equal to `-`. */
export function normalizeName(name: string): string {
  // Most names are already lowercase with dashes: skip the copies (hot at 100,000 tasks).
  return /[A-Z_]/.test(name) ? name.toLowerCase().replace(/_/g, "-") : name;
}

export function checkName(name: string): Parsed<string> {
  if (name.length === 0) return fail("must not be empty");
  if (name.length > NAME_MAX_LENGTH) return fail(`is ${name.length} characters long; at most ${NAME_MAX_LENGTH} are allowed`);
  if (!NAME_PATTERN.test(name)) {
    return fail("must start with a letter, contain only letters, digits, `-` and `_`, and end with a letter or digit");
  }
  return ok(name);
}

const BINARY_UNITS: Record<string, number> = {
  "": 1,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
  K: 1e3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
};

/** A Kubernetes-style quantity (`512Mi`, `1Gi`, `2G`, `1073741824`) in bytes. */
export function parseSize(input: string | number): Parsed<number> {
  if (typeof input === "number") {
    return Number.isInteger(input) && input >= 0 ? ok(input) : fail("must be a whole, non-negative number of bytes");
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$/.exec(input);
  if (!match) return fail("must be a number with an optional unit, like `512Mi`, `1Gi` or `1073741824`");
  const unit = match[2] ?? "";
  const factor = BINARY_UNITS[unit];
  if (factor === undefined) {
    return fail(`has an unknown unit \`${unit}\`; use Ki, Mi, Gi, Ti (binary) or K, M, G, T (decimal)`);
  }
  const bytes = Math.round(Number(match[1]) * factor);
  if (!Number.isSafeInteger(bytes)) return fail("is too large");
  return ok(bytes);
}

/** A non-negative integer count (cpu, gpu); numeric strings are accepted as OSMO does. */
export function parseCount(input: string | number): Parsed<number> {
  const value = typeof input === "number" ? input : /^\s*\d+\s*$/.test(input) ? Number(input) : NaN;
  if (!Number.isInteger(value) || value < 0) return fail("must be a whole, non-negative number");
  return ok(value);
}

// Durations (`exec_timeout`, `queue_timeout`; the CLI's and pools' `start_timeout` too) have their home in the model.
export { parseDuration } from "../model/index.js";

export interface ExitRange {
  from: number;
  to: number;
}

/** `"0,1-10,16"`: a comma-separated list of codes and inclusive ranges. */
export function parseExitRanges(input: string | number): Parsed<ExitRange[]> {
  const text = String(input).trim();
  if (text === "") return fail("is empty; give exit codes like `1`, `1-10` or `0,2-5`");
  const ranges: ExitRange[] = [];
  for (const rawPart of text.split(",")) {
    const part = rawPart.trim();
    const match = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(part);
    if (!match) return fail(`has a malformed entry \`${part}\`; use codes like \`1\` or ranges like \`1-10\``);
    const from = Number(match[1]);
    const to = match[2] === undefined ? from : Number(match[2]);
    if (from > to) return fail(`has a reversed range \`${part}\``);
    if (to > 255) return fail(`has \`${part}\` outside the user exit codes 0-255`);
    ranges.push({ from, to });
  }
  return ok(ranges);
}

export function rangesOverlap(a: ExitRange, b: ExitRange): boolean {
  return a.from <= b.to && b.from <= a.to;
}

export function formatRange(r: ExitRange): string {
  return r.from === r.to ? String(r.from) : `${r.from}-${r.to}`;
}

const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
export const MAX_LABELS = 16;

/** Kubernetes label key: `[prefix/]name`, prefix a DNS subdomain of at most 253, name at most 63. */
export function checkLabelKey(key: string): Parsed<string> {
  const slash = key.lastIndexOf("/");
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) {
    return fail(`has an invalid prefix \`${prefix}\`: it must be a lowercase DNS subdomain`);
  }
  if (name.length === 0 || name.length > 63 || !LABEL_NAME.test(name)) {
    return fail("must be at most 63 characters of letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit");
  }
  return ok(key);
}

export function checkLabelValue(value: string): Parsed<string> {
  if (value === "") return ok(value);
  if (value.length > 63 || !LABEL_NAME.test(value)) {
    return fail("must be empty or at most 63 characters of letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit");
  }
  return ok(value);
}

/** A label value in a workflow file: OSMO refuses empty ones there (Kubernetes would not). */
export function checkSpecLabelValue(value: string): Parsed<string> {
  if (value === "") return fail("must not be empty (OSMO refuses empty label values)");
  const checked = checkLabelValue(value);
  return checked.ok ? checked : fail(checked.reason.replace("must be empty or ", "must be "));
}

/** A host mount, `SRC` or `SRC:DEST`, as OSMO reads it: no third part, no empty destination. */
export function checkVolumeMount(mount: string): Parsed<string> {
  const parts = mount.split(":");
  if (parts[0] === "") return fail(`\`${mount}\` has no source path`);
  if (parts.length > 2) return fail(`\`${mount}\` has ${parts.length} parts; write \`SRC\` or \`SRC:DEST\``);
  if (parts.length === 2 && parts[1] === "") return fail(`\`${mount}\` has an empty destination after \`:\``);
  const bad = parts.find((path) => !path.startsWith("/") || path.split("/").includes(".."));
  if (bad !== undefined) return fail(`\`${bad}\` in \`${mount}\` is not an absolute path without \`..\``);
  return ok(mount);
}

/** A volume mount that checkVolumeMount accepted: the host's path, and where the task sees it (the same path by default). */
export function parseVolumeMount(mount: string): { source: string; target: string } {
  const [source, target] = mount.split(":") as [string, string | undefined];
  const clean = (path: string) => path.replace(/(.)\/+$/, "$1");
  return { source: clean(source), target: clean(target ?? source) };
}

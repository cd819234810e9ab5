/**
 * Object-store URLs as workflows and data credentials write them
 * (`s3://BUCKET[/PATH]`), in one place for the validator, the credential
 * CLI and the data layer. Pure: no Node, no dependencies.
 */

/** The schemes troupe can transfer (OSMO also knows gs, swift, tos and azure: refused, naming these). */
export const SUPPORTED_STORAGE_SCHEMES = ["s3"] as const;
export type StorageScheme = (typeof SUPPORTED_STORAGE_SCHEMES)[number];

export interface StorageUrl {
  scheme: StorageScheme;
  bucket: string;
  /** The key prefix after the bucket, without a leading "/", as written otherwise ("" for the whole bucket). */
  path: string;
}

/** The supported schemes as a message lists them: `s3://`. */
export function supportedSchemesText(): string {
  return SUPPORTED_STORAGE_SCHEMES.map((s) => `${s}://`).join(", ");
}

/** OSMO's URI component: no "/", ",", ";" or "*". */
const COMPONENT = /^[^/,;*]+$/;

/** `url` parsed, or why it is not a URL troupe can transfer. */
export function parseStorageUrl(url: string): { ok: true; value: StorageUrl } | { ok: false; reason: string } {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(url)?.[1];
  if (scheme === undefined)
    return { ok: false, reason: `\`${url}\` is not a URL of an object store (${supportedSchemesText()}BUCKET/PATH)` };
  if (!(SUPPORTED_STORAGE_SCHEMES as readonly string[]).includes(scheme))
    return { ok: false, reason: `\`${scheme}://\` is not a scheme troupe can transfer; supported: ${supportedSchemesText()}` };
  const rest = url.slice(scheme.length + 3);
  const slash = rest.indexOf("/");
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? "" : rest.slice(slash + 1);
  if (!COMPONENT.test(bucket)) return { ok: false, reason: `\`${url}\` names no bucket (${scheme}://BUCKET/PATH)` };
  const parts = path.replace(/\/+$/, "").split("/");
  if (path.replace(/\/+$/, "") !== "" && parts.some((p) => !COMPONENT.test(p) || p === "." || p === ".."))
    return { ok: false, reason: `\`${url}\` has an empty, \`.\` or \`..\` path segment, or one with \`,\`, \`;\` or \`*\`` };
  return { ok: true, value: { scheme: scheme as StorageScheme, bucket, path } };
}

/**
 * Where a data store (`s3://BUCKET/PREFIX`, a pool's intermediate storage) keeps the output of attempt
 * `retryId` of task `taskName` in run `runId`: `s3://BUCKET/PREFIX/RUN/TASK/RETRY/`.
 */
export function storedOutputUrl(store: string, runId: string, taskName: string, retryId: number): string {
  return `${store.replace(/\/+$/, "")}/${runId}/${taskName}/${retryId}/`;
}

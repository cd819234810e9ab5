/**
 * What an object store's answer means for a transfer: refused (wrong keys, no
 * right, no such bucket: retrying will not help, and OSMO calls it data access
 * unauthorized), or worth another try (the network, a 5xx, throttling). The
 * SDK's exception `name` decides, its HTTP status where there is no name
 * (HEAD answers have no body); docs/s3-notes.md lists what SeaweedFS says.
 */

const REFUSALS = new Set([
  "AccessDenied",
  "SignatureDoesNotMatch",
  "InvalidAccessKeyId",
  "InvalidToken",
  "ExpiredToken",
  "AllAccessDisabled",
  "AccountProblem",
  "NoSuchBucket",
  "PermanentRedirect",
  "AuthorizationHeaderMalformed",
]);

interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number; attempts?: number };
}

/**
 * The object changed on the store between two requests of one download (its
 * ETag is not the one the download began with): the bytes fetched are of
 * another version. Not transient: the download stops rather than splice.
 */
export class ObjectChangedError extends Error {
  override name = "ObjectChanged";
}

/** The HTTP status of the store's answer, when there was one. */
export function statusOf(error: unknown): number | undefined {
  return (error as SdkError | undefined)?.$metadata?.httpStatusCode;
}

/** The store refused (credentials, rights, the bucket): no retry will change its mind. */
export function isRefusal(error: unknown): boolean {
  const e = error as SdkError;
  const status = statusOf(error);
  return REFUSALS.has(e?.name ?? "") || status === 401 || status === 403 || (status === 404 && e?.name !== "NoSuchKey");
}

/** A failure another attempt may get past: no answer at all, a 5xx, throttling. */
export function isTransient(error: unknown): boolean {
  if ((error as Error | undefined)?.name === "AbortError" || error instanceof ObjectChangedError) return false;
  const status = statusOf(error);
  return status === undefined || status >= 500 || status === 429;
}

/** The store's reason as a person reads it: `AccessDenied (HTTP 403): Access Denied.`, or the network's error. */
export function storeReason(error: unknown): string {
  const e = error as SdkError;
  const status = statusOf(error);
  const name = e?.name && e.name !== "Error" ? e.name : e?.code;
  const message = e?.message && e.message !== name && e.message !== "UnknownError" ? e.message : undefined;
  if (message && name && status === undefined && message.includes(name)) return message;
  const head = [name, status !== undefined ? `(HTTP ${status})` : undefined].filter(Boolean).join(" ");
  return [head, message].filter(Boolean).join(": ") || String(error);
}

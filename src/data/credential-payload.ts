/**
 * Credentials as OSMO's `osmo credential set` takes them: a name, a type
 * (REGISTRY, DATA, GENERIC) and a payload of key=value pairs whose keys the
 * type fixes. Pure: deciding what is a valid credential; the store keeps them
 * encrypted (store/credentials.ts).
 */
import { TroupeError } from "../errors/index.js";
import { parseStorageUrl, supportedSchemesText, type StorageUrl } from "../model/index.js";

export const CREDENTIAL_TYPES = ["REGISTRY", "DATA", "GENERIC"] as const;
export type CredentialType = (typeof CREDENTIAL_TYPES)[number];

/** OSMO's CREDNAMEREGEX: a letter first, then letters, digits, `-` and `_`, not ending in `-` or `_`. */
const NAME = /^[a-zA-Z]([a-zA-Z0-9_-]*[a-zA-Z0-9])?$/;

/** The keys each type takes (OSMO's models forbid others); GENERIC takes any. */
const KEYS = {
  REGISTRY: { required: ["auth"], optional: ["registry", "username"] },
  DATA: { required: ["endpoint", "access_key_id", "access_key"], optional: ["region", "override_url", "addressing_style"] },
} as const;

const ADDRESSING_STYLES = ["virtual", "path", "auto"];

function bad(code: string, message: string, hint?: string): TroupeError {
  return new TroupeError(code, message, "usage", hint);
}

export function checkCredentialName(name: string): string {
  if (!NAME.test(name) || name.length > 128)
    throw bad(
      "E_CREDENTIAL_NAME",
      `\`${name}\` is not a credential name: letters, digits, - and _, starting with a letter and not ending with - or _`,
    );
  return name;
}

/** `registry`, `DATA`, ...: the type, in OSMO's spelling. */
export function parseCredentialType(text: string): CredentialType {
  const type = text.toUpperCase();
  if (!(CREDENTIAL_TYPES as readonly string[]).includes(type))
    throw bad("E_CREDENTIAL_TYPE", `\`${text}\` is not a credential type; the types are registry, data and generic`);
  return type as CredentialType;
}

/**
 * The payload as stored: checked against its type's keys (all required ones,
 * no others), a DATA credential's endpoint and override URL checked and its
 * endpoint's trailing "/" dropped (as OSMO does). REGISTRY's `password` is
 * OSMO's other name for `auth`.
 */
export function checkPayload(type: CredentialType, payload: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = { ...payload };
  if (type === "GENERIC") return out;
  if (type === "REGISTRY" && out.password !== undefined && out.auth === undefined) {
    out.auth = out.password;
    delete out.password;
  }
  const { required, optional } = KEYS[type];
  const known = new Set<string>([...required, ...optional]);
  const unknown = Object.keys(out).filter((k) => !known.has(k));
  const missing = required.filter((k) => out[k] === undefined);
  const problems = [
    ...(missing.length > 0 ? [`needs ${missing.map((k) => `\`${k}\``).join(", ")}`] : []),
    ...(unknown.length > 0 ? [`takes no ${unknown.map((k) => `\`${k}\``).join(", ")}`] : []),
  ];
  if (problems.length > 0)
    throw bad(
      "E_CREDENTIAL_PAYLOAD",
      `a ${type} credential ${problems.join(" and ")}`,
      `its keys: ${required.join(", ")} (required), ${optional.join(", ")} (optional)`,
    );
  if (type === "DATA") {
    out.endpoint = out.endpoint!.replace(/\/+$/, "");
    endpointOf(out.endpoint);
    if (out.override_url !== undefined) checkOverrideUrl(out.override_url);
    if (out.addressing_style !== undefined && !ADDRESSING_STYLES.includes(out.addressing_style))
      throw bad("E_CREDENTIAL_PAYLOAD", `addressing_style \`${out.addressing_style}\` is none of ${ADDRESSING_STYLES.join(", ")}`);
  }
  return out;
}

function endpointOf(endpoint: string): StorageUrl {
  const parsed = parseStorageUrl(endpoint);
  if (parsed.ok) return parsed.value;
  const http = /^https?:\/\/[^/]+/.exec(endpoint)?.[0];
  throw bad(
    "E_CREDENTIAL_ENDPOINT",
    `endpoint: ${parsed.reason}`,
    http
      ? `that looks like the service's address: give it as override_url=${http} and the bucket as endpoint=s3://BUCKET`
      : `an endpoint is ${supportedSchemesText()}BUCKET (optionally /PATH); an S3-compatible service's address goes in override_url`,
  );
}

function checkOverrideUrl(text: string): void {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:") || url.username || url.password || url.search || url.hash)
    throw bad(
      "E_CREDENTIAL_PAYLOAD",
      `override_url \`${text}\` is not an http:// or https:// address of a service (e.g. http://127.0.0.1:9000)`,
    );
}

/** A DATA credential, ready for the data layer. */
export interface DataCredential {
  name: string;
  endpoint: StorageUrl;
  accessKeyId: string;
  secretAccessKey: string;
  region: string | undefined;
  /** An S3-compatible service's address; absent for AWS itself. */
  overrideUrl: string | undefined;
  addressingStyle: "virtual" | "path" | "auto" | undefined;
}

/** The DATA credential a stored payload is (it was checked when set). */
export function dataCredentialFrom(name: string, payload: Readonly<Record<string, string>>): DataCredential {
  const checked = checkPayload("DATA", payload);
  return {
    name,
    endpoint: endpointOf(checked.endpoint!),
    accessKeyId: checked.access_key_id!,
    secretAccessKey: checked.access_key!,
    region: checked.region,
    overrideUrl: checked.override_url,
    addressingStyle: checked.addressing_style as DataCredential["addressingStyle"],
  };
}

/**
 * The credential for `url`: a DATA credential whose endpoint's bucket is the
 * URL's and whose path (if any) contains the URL's; the one with the longest
 * such path when several do.
 */
export function credentialFor(url: StorageUrl, credentials: readonly DataCredential[]): DataCredential | undefined {
  const within = (prefix: string) => prefix === "" || url.path === prefix || url.path.startsWith(prefix + "/");
  return credentials
    .filter((c) => c.endpoint.scheme === url.scheme && c.endpoint.bucket === url.bucket && within(c.endpoint.path.replace(/\/+$/, "")))
    .sort((a, b) => b.endpoint.path.length - a.endpoint.path.length)[0];
}

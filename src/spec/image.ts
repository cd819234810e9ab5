/**
 * Image references: the OCI distribution grammar that OSMO, podman and docker
 * accept, `[registry[:port]/]name[:tag][@digest]` (distribution/reference's
 * regexp.go). Checked at validate time, so that nothing else (`--volume=...`)
 * ever reaches a container engine's command line as an image.
 */
import type { Parsed } from "./values.js";

const ALNUM = "[a-z0-9]+";
const SEPARATOR = "(?:[._]|__|[-]+)";
const PATH_COMPONENT = `${ALNUM}(?:${SEPARATOR}${ALNUM})*`;
const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const HOST = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])`;
const NAME = `(?:${HOST}(?::[0-9]+)?/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*`;
const TAG = "[\\w][\\w.-]{0,127}";
const DIGEST = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";
export const IMAGE_PATTERN = new RegExp(`^(${NAME})(?::${TAG})?(?:@(${DIGEST}))?$`);
/** distribution/reference's NameTotalLengthMax. */
const NAME_MAX = 255;
/** Hex digits of the digests whose length is known. */
const DIGEST_LENGTHS: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

const EXAMPLES = "for example alpine:3.18, nvcr.io/nvidia/pytorch:24.01-py3 or ubuntu@sha256:<64 hex digits>";

type Checked = Parsed<string> & { hint?: string };
const fail = (reason: string, hint = EXAMPLES): Checked => ({ ok: false, reason, hint });

export function checkImageReference(image: string): Checked {
  const quoted = `\`${image}\``;
  if (image === "") return fail("must not be empty");
  // Special tokens ({{output}}...) have a rule of their own (E_TOKEN_NOT_ALLOWED).
  if (image.includes("{{")) return { ok: true, value: image };
  if (image.startsWith("-")) return fail(`${quoted} starts with \`-\`; an image reference never does`);
  if (/\s/.test(image)) return fail(`${quoted} contains whitespace`);
  const match = IMAGE_PATTERN.exec(image);
  if (!match) {
    const lower = image.replace(/^([^/]*[.:][^/]*\/|localhost\/)?(.*?)((?::[\w][\w.-]*)?(?:@.*)?)$/, (_m, host = "", path, rest) => {
      return `${String(host)}${String(path).toLowerCase()}${String(rest)}`;
    });
    if (lower !== image && IMAGE_PATTERN.test(lower)) return fail(`${quoted}: repository names are lowercase`, `write ${lower}`);
    return fail(`${quoted} is not an image reference ([registry[:port]/]name[:tag][@digest])`);
  }
  const name = match[1] as string;
  if (name.length > NAME_MAX) return fail(`${quoted}: its name is ${name.length} characters long; at most ${NAME_MAX} are allowed`);
  const digest = match[2];
  if (digest !== undefined) {
    const [algorithm, hex] = digest.split(":") as [string, string];
    const length = DIGEST_LENGTHS[algorithm];
    if (length !== undefined && hex.length !== length)
      return fail(`${quoted}: a ${algorithm} digest has ${length} hex digits, not ${hex.length}`);
  }
  return { ok: true, value: image };
}

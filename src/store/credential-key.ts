/**
 * The key credentials are encrypted with, kept outside the database: a file
 * of 32 random bytes (base64), `credential.key` beside troupe.db with mode
 * 0600, or the file TROUPE_CREDENTIAL_KEY_FILE names (on another disk, a
 * secrets mount). Payloads are sealed with AES-256-GCM (node:crypto): a fresh
 * 12-byte nonce each, and the credential's owner, name and type as
 * associated data, so that a sealed payload cannot be moved to another row.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { closeSync, openSync, readFileSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import { TroupeError } from "../errors/index.js";

export const KEY_FILE = "credential.key";
export const KEY_FILE_VARIABLE = "TROUPE_CREDENTIAL_KEY_FILE";
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

export interface CredentialKey {
  /** Where it was read from, for messages. */
  path: string;
  /** A fingerprint of the key (not the key): rows sealed with another key are told apart by it. */
  id: string;
  seal(plain: Buffer, associated: string): Buffer;
  open(sealed: Buffer, associated: string): Buffer;
}

function keyError(message: string, hint?: string): TroupeError {
  return new TroupeError("E_CREDENTIAL_KEY", message, "system", hint);
}

/** The key file's path: TROUPE_CREDENTIAL_KEY_FILE, else `home/credential.key`. */
export function keyPath(home: string, env: NodeJS.ProcessEnv = process.env): { path: string; named: boolean } {
  const named = env[KEY_FILE_VARIABLE];
  return named ? { path: named, named: true } : { path: join(home, KEY_FILE), named: false };
}

/**
 * The key; made (a new random one, mode 0600) when `create` and there is
 * none at the default place. A file that others may read, or that does not
 * hold 32 bytes, is refused.
 */
export function loadKey(home: string, create: boolean, env: NodeJS.ProcessEnv = process.env): CredentialKey | undefined {
  const { path, named } = keyPath(home, env);
  try {
    return readKey(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    if (named) throw keyError(`the credential key ${path} (${KEY_FILE_VARIABLE}) does not exist`, MAKE_ONE);
    return create ? makeKey(path) : undefined;
  }
}

const MAKE_ONE = "make one with: (umask 077; openssl rand -base64 32 > FILE)";

/** The key in `path`; throws ENOENT's error as it came when there is no file. */
function readKey(path: string): CredentialKey {
  let text: string;
  try {
    const mode = statSync(path).mode;
    if ((mode & 0o077) !== 0)
      throw keyError(`the credential key ${path} may be read by other users (mode ${(mode & 0o777).toString(8)})`, `chmod 600 ${path}`);
    text = readFileSync(path, "utf8").trim();
  } catch (error) {
    if (error instanceof TroupeError || (error as NodeJS.ErrnoException).code === "ENOENT") throw error;
    throw keyError(`cannot read the credential key ${path}: ${(error as Error).message}`);
  }
  const key = Buffer.from(text, "base64");
  if (key.length !== 32 || key.toString("base64") !== text)
    throw keyError(`the credential key ${path} does not hold 32 bytes in base64`, MAKE_ONE);
  return keyOf(key, path);
}

function makeKey(path: string): CredentialKey {
  const key = randomBytes(32);
  let fd: number;
  try {
    fd = openSync(path, "wx", 0o600);
  } catch (error) {
    // Another troupe made it first: use that one.
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return readKey(path);
    throw keyError(`cannot make the credential key ${path}: ${(error as Error).message}`);
  }
  try {
    writeSync(fd, key.toString("base64") + "\n");
  } finally {
    closeSync(fd);
  }
  return keyOf(key, path);
}

function keyOf(key: Buffer, path: string): CredentialKey {
  return {
    path,
    id: createHash("sha256").update("troupe credential key\0").update(key).digest("hex").slice(0, 16),
    seal(plain, associated) {
      const nonce = randomBytes(NONCE_BYTES);
      const cipher = createCipheriv("aes-256-gcm", key, nonce);
      cipher.setAAD(Buffer.from(associated));
      const body = Buffer.concat([cipher.update(plain), cipher.final()]);
      return Buffer.concat([nonce, body, cipher.getAuthTag()]);
    },
    open(sealed, associated) {
      const decipher = createDecipheriv("aes-256-gcm", key, sealed.subarray(0, NONCE_BYTES));
      decipher.setAAD(Buffer.from(associated));
      decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
      return Buffer.concat([decipher.update(sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES)), decipher.final()]);
    },
  };
}

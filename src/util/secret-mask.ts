/**
 * Masking of credentials' secret values in task output, as OSMO does: every
 * occurrence of a value of MASKED_MIN_LENGTH characters or more becomes
 * MASK. Shorter values are left alone (masking "true" or "1" would garble
 * every log while protecting nothing).
 *
 * Output arrives in chunks that may cut a secret anywhere, so the streaming
 * masker keeps a carry back: the end of the chunk that could be the start of
 * a secret (at most longest secret - 1 bytes), so that a secret split across
 * two writes is still whole when it is looked for. Only such an end is held:
 * a line that ends in anything else comes out at once (the live view of a
 * task that prints a line an hour does not lag). What it holds back comes out
 * with the next chunk, or at `end()`.
 */

/** What a secret value becomes in logs. */
export const MASK = "[MASKED]";

/** Values shorter than this are not masked (OSMO's rule). */
export const MASKED_MIN_LENGTH = 8;

const MASK_BYTES = Buffer.from(MASK);

/** The values worth masking among `values`: long enough, each once, longest first (the longest wins where two start together). */
export function maskableSecrets(values: Iterable<string>): string[] {
  const kept = new Set<string>();
  for (const value of values) if ([...value].length >= MASKED_MIN_LENGTH) kept.add(value);
  return [...kept].sort((a, b) => Buffer.byteLength(b) - Buffer.byteLength(a));
}

/** Whether any of `secrets` is long enough to be masked (a log of a task without any is written as it comes). */
export function hasMaskable(secrets: readonly string[] | undefined): secrets is readonly string[] {
  return secrets !== undefined && maskableSecrets(secrets).length > 0;
}

/** `text` with every secret in it masked. */
export function maskText(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of maskableSecrets(secrets)) out = out.split(secret).join(MASK);
  return out;
}

/** A masker of one stream of bytes (one task attempt's output). */
export class SecretMasker {
  private readonly secrets: Buffer[];
  /** The most a carry may hold: the longest secret but one byte. */
  private readonly carryLength: number;
  /** Bytes of a possible secret's beginning, held until the next chunk shows whether it is one. */
  private carry: Buffer = Buffer.alloc(0);

  constructor(secrets: readonly string[]) {
    this.secrets = maskableSecrets(secrets).map((s) => Buffer.from(s));
    this.carryLength = this.secrets.length > 0 ? this.secrets[0]!.length - 1 : 0;
  }

  /** Whether there is anything to mask at all (otherwise chunks pass unchanged). */
  get active(): boolean {
    return this.secrets.length > 0;
  }

  /** The masked bytes that can be given out now; some of `chunk` may be held back for the next call. */
  push(chunk: Buffer): Buffer {
    if (!this.active) return chunk;
    const data = this.carry.length > 0 ? Buffer.concat([this.carry, chunk]) : chunk;
    // Bytes from `safe` on could be the start of a secret that the next chunk completes.
    const safe = data.length - this.unfinished(data);
    const { out, next } = this.mask(data, safe);
    this.carry = Buffer.from(data.subarray(next));
    return out;
  }

  /** The rest, masked: the stream has ended. */
  end(): Buffer {
    if (!this.active || this.carry.length === 0) return Buffer.alloc(0);
    const { out } = this.mask(this.carry, this.carry.length);
    this.carry = Buffer.alloc(0);
    return out;
  }

  /** How many bytes at the end of `data` are the beginning (not the whole) of a secret: the longest such end. */
  private unfinished(data: Buffer): number {
    for (let k = Math.min(this.carryLength, data.length); k > 0; k--) {
      const end = data.subarray(data.length - k);
      if (this.secrets.some((secret) => secret.length > k && secret.subarray(0, k).equals(end))) return k;
    }
    return 0;
  }

  /** Where a masked stretch ends: secrets that overlap it (start inside it) are masked with it, whole. */
  private overlapEnd(data: Buffer, start: number, end: number): number {
    for (let grown = true; grown;) {
      grown = false;
      for (const secret of this.secrets) {
        const index = data.indexOf(secret, start + 1);
        if (index >= 0 && index < end && index + secret.length > end) {
          end = index + secret.length;
          grown = true;
        }
      }
    }
    return end;
  }

  /**
   * Masks the secrets of `data` that start before `limit` (each is whole in
   * `data`, or it would start at or after `limit`); returns the masked bytes
   * and where in `data` the unprocessed rest begins.
   */
  private mask(data: Buffer, limit: number): { out: Buffer; next: number } {
    const parts: Buffer[] = [];
    let at = 0;
    for (;;) {
      let found = -1;
      let length = 0;
      for (const secret of this.secrets) {
        const index = data.indexOf(secret, at);
        // Earliest start wins; at the same start the longer (secrets are longest first).
        if (index >= 0 && (found < 0 || index < found)) {
          found = index;
          length = secret.length;
        }
      }
      if (found < 0 || found >= limit) break;
      parts.push(data.subarray(at, found), MASK_BYTES);
      at = this.overlapEnd(data, found, found + length);
    }
    const next = Math.max(at, limit);
    parts.push(data.subarray(at, next));
    return { out: parts.length === 1 ? Buffer.from(parts[0]!) : Buffer.concat(parts), next };
  }
}

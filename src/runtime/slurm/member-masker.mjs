// Secret masking for the Slurm member helper (member-helper.mjs): the streaming masker of
// src/util/secret-mask.ts again, because the helper runs alone on a node, from the shared file system,
// with no troupe installed there. Plain JavaScript, no imports but Node's.
import fs from "node:fs";

/**
 * The process's output (stdout and stderr), masked, into the log `output`: the held-back rest is written, and
 * the log closed, as the process closes (registered before its other "close" listeners: they see a whole log).
 */
export function writeMasked(child, output, masker) {
  const write = (bytes) => bytes.length > 0 && fs.writeSync(output, bytes);
  child.stdout.on("data", (chunk) => write(masker.push(chunk)));
  child.stderr.on("data", (chunk) => write(masker.push(chunk)));
  child.on("close", () => {
    write(masker.end());
    fs.closeSync(output);
  });
}

/**
 * The streaming masker of src/util/secret-mask.ts, here again because this file runs alone on the node:
 * every secret becomes "[MASKED]"; an end of a chunk that could begin a secret is held back for the next.
 */
export function secretMasker(values) {
  const secrets = [...new Set(values)].filter((v) => [...v].length >= 8).map((v) => Buffer.from(v));
  secrets.sort((a, b) => b.length - a.length);
  const carryLength = secrets.length ? secrets[0].length - 1 : 0;
  const mask = Buffer.from("[MASKED]");
  let carry = Buffer.alloc(0);
  const run = (data, limit) => {
    const parts = [];
    let at = 0;
    for (;;) {
      let found = -1;
      let length = 0;
      for (const secret of secrets) {
        const index = data.indexOf(secret, at);
        if (index >= 0 && (found < 0 || index < found)) {
          found = index;
          length = secret.length;
        }
      }
      if (found < 0 || found >= limit) break;
      parts.push(data.subarray(at, found), mask);
      at = found + length;
      // Secrets that overlap the masked stretch go with it, whole.
      for (let grown = true; grown;) {
        grown = false;
        for (const secret of secrets) {
          const index = data.indexOf(secret, found + 1);
          if (index >= 0 && index < at && index + secret.length > at) {
            at = index + secret.length;
            grown = true;
          }
        }
      }
    }
    const next = Math.max(at, limit);
    parts.push(data.subarray(at, next));
    return { out: Buffer.concat(parts), next };
  };
  const unfinished = (data) => {
    for (let k = Math.min(carryLength, data.length); k > 0; k--) {
      const end = data.subarray(data.length - k);
      if (secrets.some((secret) => secret.length > k && secret.subarray(0, k).equals(end))) return k;
    }
    return 0;
  };
  return {
    push(chunk) {
      if (!secrets.length) return chunk;
      const data = Buffer.concat([carry, chunk]);
      const { out, next } = run(data, data.length - unfinished(data));
      carry = Buffer.from(data.subarray(next));
      return out;
    },
    end() {
      const { out } = run(carry, carry.length);
      carry = Buffer.alloc(0);
      return out;
    },
  };
}

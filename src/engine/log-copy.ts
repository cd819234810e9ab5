/**
 * Logs of pools whose tasks write none on this machine (PoolCapabilities
 * .localLogs false): each released attempt's stream (GroupHandle.logs) is
 * copied to the attempt's log file, so that `troupe logs`, the server and
 * the live views read it as they read a local runtime's. The run's secrets
 * are masked on the way (util/secret-mask.ts), however the stream cuts them.
 */
import { createWriteStream, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { SecretMasker } from "../util/secret-mask.js";

/** Resolves when the stream has ended and every byte is on disk; a failure is reported, not thrown. */
export async function copyLog(
  stream: () => Readable,
  path: string,
  onError: (error: Error) => void,
  secrets: readonly string[] = [],
): Promise<void> {
  try {
    mkdirSync(dirname(path), { recursive: true });
    const masker = new SecretMasker(secrets);
    // Appending: an attempt restarted in place goes on in the same file.
    const file = createWriteStream(path, { flags: "a" });
    if (!masker.active) await pipeline(stream(), file);
    else await pipeline(stream(), maskingTransform(masker), file);
  } catch (error) {
    onError(error as Error);
  }
}

function maskingTransform(masker: SecretMasker): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      done(null, masker.push(chunk));
    },
    flush(done) {
      done(null, masker.end());
    },
  });
}

/**
 * Logs of pools whose tasks write none on this machine (PoolCapabilities
 * .localLogs false): each released attempt's stream (GroupHandle.logs) is
 * copied to the attempt's log file, so that `troupe logs`, the server and
 * the live views read it as they read a local runtime's.
 */
import { createWriteStream, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";

/** Resolves when the stream has ended and every byte is on disk; a failure is reported, not thrown. */
export async function copyLog(stream: () => Readable, path: string, onError: (error: Error) => void): Promise<void> {
  try {
    mkdirSync(dirname(path), { recursive: true });
    // Appending: an attempt restarted in place goes on in the same file.
    await pipeline(stream(), createWriteStream(path, { flags: "a" }));
  } catch (error) {
    onError(error as Error);
  }
}

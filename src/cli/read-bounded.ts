/**
 * Reading a workflow file, or standard input, up to a limit: `/dev/zero` or an
 * endless pipe is read up to one byte past the limit, not until memory runs out.
 */
import { closeSync, openSync, readSync } from "node:fs";

export interface BoundedRead {
  bytes: Buffer;
  /** The source goes on past `maxBytes`: `bytes` holds only its first `maxBytes + 1`. */
  truncated: boolean;
}

/** Reads `file` (`-`: standard input); errors are the file system's (ENOENT, EISDIR...). */
export function readBounded(file: string, maxBytes: number): BoundedRead {
  const fd = file === "-" ? 0 : openSync(file, "r");
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(1024 * 1024, maxBytes + 1 - size));
      let read: number;
      try {
        read = readSync(fd, chunk, 0, chunk.length, null);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "EOF") break;
        if (code !== "EAGAIN") throw error;
        // A non-blocking standard input with nothing yet: wait a little, without spinning.
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
        continue;
      }
      if (read === 0) break;
      chunks.push(chunk.subarray(0, read));
      size += read;
      if (size > maxBytes) return { bytes: Buffer.concat(chunks), truncated: true };
    }
  } finally {
    if (fd !== 0) closeSync(fd);
  }
  return { bytes: Buffer.concat(chunks), truncated: false };
}

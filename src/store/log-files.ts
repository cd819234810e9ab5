/** Reading task logs from their files: the tail of a log without loading it whole. */
import { closeSync, openSync, readSync, statSync } from "node:fs";

/**
 * Where the last `lines` lines of the file begin, in bytes (0 for the whole
 * file, or when it has fewer lines). Reads backwards in 64 KiB blocks.
 */
export function tailOffset(path: string, lines: number | undefined): number {
  if (lines === undefined) return 0;
  const size = statSync(path).size;
  if (lines === 0) return size;
  const fd = openSync(path, "r");
  try {
    const block = Buffer.alloc(64 * 1024);
    let end = size;
    // A final line break ends the last line rather than starting a new one.
    let breaks = 0;
    let skipFinal = true;
    while (end > 0) {
      const length = Math.min(block.length, end);
      const start = end - length;
      readSync(fd, block, 0, length, start);
      for (let i = length - 1; i >= 0; i--) {
        if (block[i] !== 0x0a) {
          skipFinal = false;
          continue;
        }
        if (skipFinal && start + i === size - 1) continue;
        breaks += 1;
        if (breaks === lines) return start + i + 1;
      }
      end = start;
    }
    return 0;
  } finally {
    closeSync(fd);
  }
}

/** The bytes of the file from `offset` to its end. */
export function readFrom(path: string, offset: number): Buffer {
  const size = statSync(path).size;
  const buffer = Buffer.alloc(Math.max(0, size - offset));
  const fd = openSync(path, "r");
  try {
    let at = 0;
    while (at < buffer.length) {
      const n = readSync(fd, buffer, at, buffer.length - at, offset + at);
      if (n === 0) break;
      at += n;
    }
    return buffer.subarray(0, at);
  } finally {
    closeSync(fd);
  }
}

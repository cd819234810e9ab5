/**
 * Doing one object's download into a file: the response's chunks (64 KiB
 * each, as the socket gives them) are gathered into a pooled buffer and
 * written a buffer at a time, so that a 1 GiB object is 128 writes, not
 * 16,000 (each a round trip through libuv's thread pool); while one buffer is
 * written the next one fills. The file is written under a temporary name and renamed when
 * whole: a failed download leaves nothing that looks complete.
 */
import { open, rename, rm } from "node:fs/promises";
import type { Readable } from "node:stream";
import type { BufferPool } from "./file-upload.js";

export interface ObjectBody {
  /** The response's body: consumed, or destroyed when the download fails. */
  body: Readable;
  /** The object's key, for messages. */
  key: string;
  file: string;
  /** The object's length, when the store said it. */
  expected: number | undefined;
  pool: BufferPool;
  signal: AbortSignal;
}

/** Writes an object's body to its file; the bytes written. */
export async function writeBody({ body, key, file, expected, pool, signal }: ObjectBody): Promise<number> {
  const partial = `${file}.troupe-part`;
  const handle = await open(partial, "w");
  let buffer = pool.take();
  // The buffer being written while the next one fills: the socket keeps being read during a write.
  let writing: Promise<Buffer> | undefined;
  const onAbort = () => body.destroy(signal.reason as Error);
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    let written = 0;
    let filled = 0;
    const write = async (full: Buffer, length: number, position: number) => {
      for (let done = 0; done < length;) done += (await handle.write(full, done, length - done, position + done)).bytesWritten;
      return full;
    };
    const flush = async () => {
      const next = writing ? await writing : pool.take();
      writing = write(buffer, filled, written);
      // Its failure is heard where it is awaited (the next flush, or the catch below), not as an unhandled rejection.
      writing.catch(() => undefined);
      written += filled;
      buffer = next;
      filled = 0;
    };
    for await (const chunk of body as AsyncIterable<Buffer>) {
      for (let at = 0; at < chunk.length;) {
        const n = chunk.copy(buffer, filled, at);
        filled += n;
        at += n;
        if (filled === buffer.length) await flush();
      }
    }
    signal.throwIfAborted();
    await flush();
    pool.give(await writing!);
    pool.give(buffer);
    if (expected !== undefined && written !== expected) throw new Error(`${key}: ${written} bytes arrived of ${expected}`);
    await handle.close();
    await rename(partial, file);
    return written;
  } catch (error) {
    body.destroy();
    // A write still under way finishes (or fails) before the file is closed and removed.
    await writing?.catch(() => undefined);
    await handle.close().catch(() => undefined);
    await rm(partial, { force: true });
    throw error;
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

/**
 * Doing one object's download into a file. A large object comes as ranges
 * fetched several at once, each written at its place in the file (one
 * stream from the store is slower than several, as awscli knows); a small one
 * in one GET. Each response's chunks (64 KiB each, as the socket gives them)
 * are gathered into a pooled buffer and written a buffer at a time, so that a
 * 1 GiB object is 128 writes, not 16,000 (each a round trip through libuv's
 * thread pool); while one buffer is written the next one fills. The file is
 * written under a temporary name and renamed when whole: a failed download
 * leaves nothing that looks complete.
 */
import { open, rename, rm, type FileHandle } from "node:fs/promises";
import type { Readable } from "node:stream";
import { runBounded } from "./bounded.js";
import type { BufferPool } from "./file-upload.js";
import { downloadRanges, type ByteRange } from "./transfer-plan.js";

/** What the store answered for a GET (of a range, when one was asked). */
export interface ObjectResponse {
  body: Readable;
  /** Bytes in this response, when the store said. */
  length: number | undefined;
  etag: string | undefined;
}

export interface ObjectDownload {
  /** The object's key, for messages. */
  key: string;
  file: string;
  /** The object's size as listed, when known: a large one is fetched in ranges. */
  size: number | undefined;
  /** A GET of the object, or of `range` of it (only while its ETag is still `ifMatch`, when given). */
  get(range: ByteRange | undefined, ifMatch: string | undefined, signal: AbortSignal): Promise<ObjectResponse>;
  pool: BufferPool;
  rangesInFlight: number;
  signal: AbortSignal;
}

/** Downloads the object into its file; the bytes written. */
export async function downloadObject(job: ObjectDownload): Promise<number> {
  const partial = `${job.file}.troupe-part`;
  const handle = await open(partial, "w");
  try {
    const ranges = job.size === undefined ? [] : downloadRanges(job.size, job.pool.bytes);
    let written: number;
    if (ranges.length <= 1) {
      const answer = await job.get(undefined, undefined, job.signal);
      written = await writeBody(answer.body, handle, 0, job.pool, job.signal);
      if (answer.length !== undefined && written !== answer.length)
        throw new Error(`${job.key}: ${written} bytes arrived of ${answer.length}`);
    } else {
      // The first range says which version of the object this is; the others are of that version only.
      const fetchRange = async (range: ByteRange, ifMatch: string | undefined, signal: AbortSignal) => {
        const answer = await job.get(range, ifMatch, signal);
        const bytes = await writeBody(answer.body, handle, range.start, job.pool, signal);
        if (bytes !== range.end - range.start + 1)
          throw new Error(`${job.key}: ${bytes} bytes arrived of ${range.end - range.start + 1} at ${range.start}`);
        return answer.etag;
      };
      const etag = await fetchRange(ranges[0]!, undefined, job.signal);
      await runBounded(
        ranges.slice(1).map((range) => (signal: AbortSignal) => fetchRange(range, etag, signal)),
        job.rangesInFlight,
        job.signal,
      );
      written = job.size!;
    }
    await handle.close();
    await rename(partial, job.file);
    return written;
  } catch (error) {
    await handle.close().catch(() => undefined);
    await rm(partial, { force: true });
    throw error;
  }
}

/** Writes `body` into the file from `position` on; the bytes written. `body` is consumed, or destroyed on failure. */
async function writeBody(body: Readable, handle: FileHandle, position: number, pool: BufferPool, signal: AbortSignal): Promise<number> {
  let buffer = pool.take();
  // The buffer being written while the next one fills: the socket keeps being read during a write.
  let writing: Promise<Buffer> | undefined;
  const onAbort = () => body.destroy(signal.reason as Error);
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    let written = 0;
    let filled = 0;
    const write = async (full: Buffer, length: number, at: number) => {
      for (let done = 0; done < length;) done += (await handle.write(full, done, length - done, at + done)).bytesWritten;
      return full;
    };
    const flush = async () => {
      const next = writing ? await writing : pool.take();
      writing = write(buffer, filled, position + written);
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
    return written;
  } catch (error) {
    body.destroy();
    // A write still under way finishes (or fails) before the file is closed and removed.
    await writing?.catch(() => undefined);
    throw error;
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

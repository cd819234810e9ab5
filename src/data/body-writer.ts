/**
 * Doing: one response body into a file from a position on. Chunks are
 * written as they come, gathered into positioned writes of about 1 MiB,
 * several in flight: no copy of the bytes in JavaScript, and each write
 * takes bytes the socket just delivered, still in the CPU's cache (gathering
 * 8 MiB before writing tripled the kernel's cost of the write and made a
 * 1 GiB download twice as slow on this machine's two cores: bench/README.md).
 * A body that breaks (the connection lost) is not a write failure: what
 * arrived before the break is written, and the caller learns how much, so
 * that it can ask for the rest.
 */
import type { FileHandle } from "node:fs/promises";
import type { Readable } from "node:stream";

/** Bytes gathered before a write starts. */
const WRITE_BYTES = 1024 * 1024;
/** Writes in flight at once (libuv's thread pool has 4 threads). */
const WRITES_IN_FLIGHT = 4;

export interface WrittenBody {
  /** Bytes written from the position on: every byte that arrived, in order. */
  bytes: number;
  /** Set when the body broke before its end (the connection lost, the stream destroyed): why. */
  broken?: unknown;
}

/**
 * Writes `body` into `handle` from `position` on. A failed write rejects (and
 * destroys the body); a broken body resolves with `broken` once what arrived
 * is on disk.
 */
export async function writeBody(body: Readable, handle: FileHandle, position: number): Promise<WrittenBody> {
  let queued = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const inFlight: Array<Promise<void>> = [];
  const start = () => {
    const write = writeAll(handle, pending, position + queued);
    // Heard where it is awaited (below), not as an unhandled rejection meanwhile.
    write.catch(() => undefined);
    inFlight.push(write);
    queued += pendingBytes;
    pending = [];
    pendingBytes = 0;
  };
  let broken: { error: unknown } | undefined;
  try {
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        pending.push(chunk);
        pendingBytes += chunk.length;
        if (pendingBytes >= WRITE_BYTES) {
          if (inFlight.length >= WRITES_IN_FLIGHT) await inFlight.shift();
          start();
        }
      }
    } catch (error) {
      if (error instanceof WriteFailure) throw error;
      broken = { error };
    }
    if (pendingBytes > 0) start();
    while (inFlight.length > 0) await inFlight.shift();
    return broken ? { bytes: queued, broken: broken.error } : { bytes: queued };
  } catch (error) {
    body.destroy();
    // Writes still under way finish (or fail) before the caller closes the file.
    await Promise.allSettled(inFlight);
    throw error instanceof WriteFailure ? error.cause : error;
  }
}

/** A write's failure, told apart from the body's own (awaited inside the loop over the body, it surfaces there). */
class WriteFailure extends Error {}

/** All of `buffers` at `position`, however many writes that takes. */
async function writeAll(handle: FileHandle, buffers: Buffer[], position: number): Promise<void> {
  try {
    // libuv writes more buffers than IOV_MAX in several calls, and goes on after a short write; this loop is
    // for a system where it would not.
    let rest = buffers;
    let at = position;
    while (rest.length > 0) {
      let { bytesWritten } = await handle.writev(rest, at);
      if (bytesWritten === 0) throw new Error(`the file took no bytes at ${at}`);
      at += bytesWritten;
      let done = 0;
      while (done < rest.length && bytesWritten >= rest[done]!.length) bytesWritten -= rest[done++]!.length;
      rest = rest.slice(done);
      if (bytesWritten > 0) rest[0] = rest[0]!.subarray(bytesWritten);
    }
  } catch (error) {
    throw new WriteFailure("write failed", { cause: error });
  }
}

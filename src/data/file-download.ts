/**
 * Doing one object's download into a file, resumed where a broken
 * connection left it: the rest is asked for as a range from the first byte
 * missing, only while the object is still the version the download began
 * with (If-Match its ETag, and the answer's ETag compared too, for stores
 * that ignore If-Match): a replaced object fails the download rather than
 * make a file of two versions. Each resume must bring bytes; a store that
 * stays away fails as before (the SDK's attempts per request, the data
 * layer's per file). The file is written under a temporary name and renamed
 * when whole: a failed download leaves nothing that looks complete.
 */
import { open, rename, rm } from "node:fs/promises";
import type { Readable } from "node:stream";
import { writeBody } from "./body-writer.js";
import { isTransient, ObjectChangedError, statusOf } from "./store-errors.js";
import { parseContentRange } from "./transfer-plan.js";

/** What the store answered for a GET (of the object from a byte on, when one was asked). */
export interface ObjectResponse {
  body: Readable;
  /** Bytes in this answer (Content-Length), when the store said. */
  length: number | undefined;
  etag: string | undefined;
  /** A ranged answer's Content-Range ("bytes 100-199/200"). */
  range: string | undefined;
}

export interface ObjectDownload {
  /** The object's key, for messages. */
  key: string;
  file: string;
  /** A GET of the object from byte `from` on (0: all of it), only while its ETag is `ifMatch`, when given. */
  get(from: number, ifMatch: string | undefined, signal: AbortSignal): Promise<ObjectResponse>;
  signal: AbortSignal;
}

/** Resumes in a row that may bring no byte before the download gives up (the SDK retried each one's request). */
const FRUITLESS_RESUMES = 2;

/** Downloads the object into its file; the bytes written. */
export async function downloadObject(job: ObjectDownload): Promise<number> {
  const { file, signal } = job;
  const partial = `${file}.troupe-part`;
  const handle = await open(partial, "w");
  let body: Readable | undefined;
  const onAbort = () => body?.destroy(signal.reason as Error);
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    const first = await job.get(0, undefined, signal);
    body = first.body;
    const etag = first.etag;
    const total = first.length;
    let have = 0;
    let fruitless = 0;
    for (;;) {
      const written = await writeBody(body, handle, have);
      have += written.bytes;
      signal.throwIfAborted();
      if (written.broken === undefined && (total === undefined || have >= total)) break;
      const why = written.broken ?? new Error(`${job.key}: the store's answer ended after ${have} of ${total} bytes`);
      fruitless = written.bytes > 0 ? 0 : fruitless + 1;
      // Without an ETag a later range could be of another version: start over instead (the data layer's retry).
      if (etag === undefined || fruitless > FRUITLESS_RESUMES || !isTransient(why)) throw why;
      body = await resume(job, have, etag, total);
    }
    if (total !== undefined && have !== total) throw new Error(`${job.key}: ${have} bytes arrived of ${total}`);
    await handle.close();
    await rename(partial, file);
    return have;
  } catch (error) {
    body?.destroy();
    await handle.close().catch(() => undefined);
    await rm(partial, { force: true });
    throw error;
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

/** The object's bytes from `from` on, of the version whose ETag is `etag`; its body. */
async function resume(job: ObjectDownload, from: number, etag: string, total: number | undefined): Promise<Readable> {
  let answer: ObjectResponse;
  try {
    answer = await job.get(from, etag, job.signal);
  } catch (error) {
    if (statusOf(error) === 412) throw new ObjectChangedError(changed(etag, undefined));
    throw error;
  }
  const range = parseContentRange(answer.range);
  const problem =
    answer.etag !== undefined && answer.etag !== etag
      ? new ObjectChangedError(changed(etag, answer.etag))
      : range === undefined || range.start !== from || (total !== undefined && range.total !== total)
        ? // Not the bytes asked for (a store that ignores ranges answers the whole object): start over.
          new Error(`${job.key}: asked for the bytes from ${from} on, the store answered ${answer.range ?? "the whole object"}`)
        : undefined;
  if (problem) {
    answer.body.destroy();
    throw problem;
  }
  return answer.body;
}

function changed(before: string, now: string | undefined): string {
  return (
    `the object changed on the store while it was downloaded (its ETag was ${before}${now ? `, now ${now}` : ""}): ` +
    "the download stops rather than join bytes of two versions; run it again to fetch the new one"
  );
}

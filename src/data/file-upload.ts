/**
 * Doing one file's upload through the SDK's own commands: one PUT when the
 * file fits in a part, else a multipart upload whose parts go up several at
 * once. Each part is read from the file straight into a buffer of a small
 * pool and sent from there, the buffer used again for the next part: no
 * stream re-chunking and no copies (lib-storage's `Upload` concatenates
 * 64 KiB stream chunks into each part, and the garbage those make cost more
 * CPU than the transfer itself on a small machine; bench/README.md). A
 * part that fails is sent again (the SDK's attempts, then the data layer's
 * tries for that part alone), not the whole file; a multipart upload that
 * fails all the same is aborted, so that its parts do not stay on the store.
 */
import { open, type FileHandle } from "node:fs/promises";
import type { S3Client } from "@aws-sdk/client-s3";
import { runBounded, withRetries, type RetryPolicy } from "./bounded.js";
import { uploadParts, type FilePart } from "./transfer-plan.js";

type S3 = typeof import("@aws-sdk/client-s3");

export interface UploadTuning {
  /** Bytes per part (S3's minimum is 5 MiB); a file up to this size goes up in one PUT. */
  partBytes: number;
  /** Parts of one file in flight at once. */
  partsInFlight: number;
}

/** Buffers of one size, handed out and taken back, so that parts do not allocate (and collect) memory each time. */
export class BufferPool {
  private readonly free: Buffer[] = [];
  constructor(
    readonly bytes: number,
    /** Buffers kept for reuse; more may be out at once, and are dropped when given back past this. */
    private readonly keep: number,
  ) {}

  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.bytes);
  }

  give(buffer: Buffer): void {
    if (this.free.length < this.keep) this.free.push(buffer);
  }
}

export interface FileUpload {
  client: S3Client;
  s3: S3;
  bucket: string;
  key: string;
  file: string;
  pool: BufferPool;
  tuning: UploadTuning;
  /** Tries per part of a multipart upload (a single PUT is the whole file: the data layer retries it). */
  partRetry: RetryPolicy;
  signal: AbortSignal;
}

const ONCE: RetryPolicy = { attempts: 1, firstDelayMs: 0 };

/** Uploads `file` to `key`; the bytes sent. */
export async function uploadFile(job: FileUpload): Promise<number> {
  const handle = await open(job.file, "r");
  try {
    const { size } = await handle.stat();
    const plan = uploadParts(size, job.tuning.partBytes);
    if (plan.single) {
      await sendPart(job, handle, { number: 1, offset: 0, length: size }, ONCE, job.signal, (body, signal) =>
        job.client.send(new job.s3.PutObjectCommand({ Bucket: job.bucket, Key: job.key, Body: body, ContentLength: size }), {
          abortSignal: signal,
        }),
      );
      return size;
    }
    await multipart(job, handle, plan.parts);
    return size;
  } finally {
    await handle.close();
  }
}

async function multipart(job: FileUpload, handle: FileHandle, parts: FilePart[]): Promise<void> {
  const { client, s3, bucket, key, signal } = job;
  const created = await client.send(new s3.CreateMultipartUploadCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
  const uploadId = created.UploadId;
  if (!uploadId) throw new Error(`the store started a multipart upload of ${key} without an upload id`);
  try {
    const sent = await runBounded(
      parts.map(
        (part) => (partSignal: AbortSignal) =>
          sendPart(job, handle, part, job.partRetry, partSignal, async (body, signal) => {
            const answer = await client.send(
              new s3.UploadPartCommand({
                Bucket: bucket,
                Key: key,
                UploadId: uploadId,
                PartNumber: part.number,
                Body: body,
                ContentLength: part.length,
              }),
              { abortSignal: signal },
            );
            if (!answer.ETag) throw new Error(`the store answered part ${part.number} of ${key} without an ETag`);
            return { PartNumber: part.number, ETag: answer.ETag };
          }),
      ),
      job.tuning.partsInFlight,
      signal,
    );
    await client.send(
      new s3.CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        UploadId: uploadId,
        MultipartUpload: { Parts: sent.sort((a, b) => a.PartNumber - b.PartNumber) },
      }),
      { abortSignal: signal },
    );
  } catch (error) {
    // Not with the transfer's signal: a stopped transfer's parts are to go too. The abort's own failure (the store
    // gone) adds nothing to the upload's.
    await client.send(new s3.AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId })).catch(() => undefined);
    throw error;
  }
}

/**
 * Reads `part` of the file into a pooled buffer and sends it with `send`,
 * again while it fails transiently and `retry` allows. The buffer goes back
 * to the pool only after a first send that settled normally: after a failure
 * or an abort the HTTP layer may still hold it, so it is dropped.
 */
async function sendPart<T>(
  job: FileUpload,
  handle: FileHandle,
  part: FilePart,
  retry: RetryPolicy,
  signal: AbortSignal,
  send: (body: Buffer, signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const buffer = part.length <= job.pool.bytes ? job.pool.take() : Buffer.allocUnsafeSlow(part.length);
  const body = buffer.subarray(0, part.length);
  for (let done = 0; done < part.length;) {
    const { bytesRead } = await handle.read(body, done, part.length - done, part.offset + done);
    if (bytesRead === 0) throw new Error(`${job.file} ended at ${part.offset + done} bytes while it was read (did it shrink?)`);
    done += bytesRead;
  }
  let sends = 0;
  const result = await withRetries(
    (s) => {
      sends++;
      return send(body, s);
    },
    retry,
    signal,
  );
  if (sends === 1 && buffer.length === job.pool.bytes) job.pool.give(buffer);
  return result;
}

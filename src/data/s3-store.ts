/**
 * Doing the transfers: one S3 bucket through the official AWS SDK, as a data
 * credential reaches it. Objects stream to and from files (never whole in
 * memory); uploads are one PUT or multipart with parts in parallel
 * (file-upload.ts); the SDK retries each request (standard strategy). The SDK
 * is loaded on first use: a run without `url:` I/O never pays for it.
 */
import { mkdir } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { Readable } from "node:stream";
import type { S3Client } from "@aws-sdk/client-s3";
import type { DataCredential } from "./credential-payload.js";
import { downloadObject } from "./file-download.js";
import type { RetryPolicy } from "./bounded.js";
import { BufferPool, uploadFile, type UploadTuning } from "./file-upload.js";
import { trustExtraCaCerts } from "../util/extra-ca.js";

/** Parts of 8 MiB (S3's minimum is 5 MiB), as awscli's; 4 in flight per file, with several files at once. */
export const DEFAULT_UPLOAD_TUNING: UploadTuning = { partBytes: 8 * 1024 * 1024, partsInFlight: 4 };
/** Part buffers kept for reuse per bucket while it is open (8 files of 4 parts in flight: 256 MiB at most). */
const POOLED_BUFFERS = 32;
/** Attempts per request (the SDK's standard strategy: backoff with jitter); the data layer retries whole files on top. */
const SDK_ATTEMPTS = 4;

export interface ListedObject {
  key: string;
  size: number;
}

/** One bucket of one store, as one credential reaches it. */
export interface BucketClient {
  readonly bucket: string;
  /** Whether the credential reaches the bucket (HeadBucket, OSMO's check for S3-compatible stores). */
  checkAccess(signal: AbortSignal): Promise<void>;
  /** The object at `key`, or undefined when there is none. */
  head(key: string, signal: AbortSignal): Promise<ListedObject | undefined>;
  list(prefix: string, signal: AbortSignal): AsyncIterable<ListedObject>;
  /** `key` into `file` (its directory made); the bytes written. */
  download(key: string, file: string, signal: AbortSignal): Promise<number>;
  /** `file` to `key`; the bytes sent. */
  upload(file: string, key: string, signal: AbortSignal): Promise<number>;
}

type Sdk = typeof import("@aws-sdk/client-s3");
let sdk: Sdk | undefined;

function loadSdk(): Sdk {
  // troupe pins SDK versions that still support Node 20 (docs/s3-notes.md): their notice that later ones will not
  // would otherwise be printed into every run's output.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  // require, not import(): bin/troupe runs a bundle compiled with a code cache, which has no dynamic import.
  const require = createRequire(import.meta.url);
  return (sdk ??= require("@aws-sdk/client-s3") as Sdk);
}

/**
 * The client a data credential makes: its region (us-east-1 when it names
 * none), its override URL for an S3-compatible service, path-style addressing
 * there unless `addressing_style=virtual` (private endpoints have no bucket
 * DNS), and checksums only where an operation requires them on such services
 * (the SDK's default CRC32 trailers are not accepted everywhere).
 */
function clientFor(credential: DataCredential): S3Client {
  const { S3Client } = loadSdk();
  trustExtraCaCerts();
  const compatible = credential.overrideUrl !== undefined;
  const style = credential.addressingStyle;
  return new S3Client({
    region: credential.region ?? "us-east-1",
    ...(compatible ? { endpoint: credential.overrideUrl } : {}),
    forcePathStyle: style === "path" || (compatible && style !== "virtual"),
    credentials: { accessKeyId: credential.accessKeyId, secretAccessKey: credential.secretAccessKey },
    maxAttempts: SDK_ATTEMPTS,
    ...(compatible ? { requestChecksumCalculation: "WHEN_REQUIRED", responseChecksumValidation: "WHEN_REQUIRED" } : {}),
  });
}

export async function openBucket(
  credential: DataCredential,
  bucket: string,
  /** Tries per part of a multipart upload (the data layer's policy: it retries whole files the same way). */
  partRetry: RetryPolicy,
  tuning: UploadTuning = DEFAULT_UPLOAD_TUNING,
): Promise<BucketClient & { close(): void }> {
  const client = clientFor(credential);
  const s3 = loadSdk();
  const pool = new BufferPool(tuning.partBytes, POOLED_BUFFERS);
  /** Directories this client has made for downloads (each made once, not once per file). */
  const directories = new Set<string>();
  return {
    bucket,
    close: () => client.destroy(),
    async checkAccess(signal) {
      try {
        await client.send(new s3.HeadBucketCommand({ Bucket: bucket }), { abortSignal: signal });
      } catch (error) {
        const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? 0;
        if (status < 400 || status >= 500 || !["Unknown", "NotFound", "Forbidden", "BadRequest"].includes((error as Error).name))
          throw error;
        // A HEAD answer has no body, so no reason: asked again with a GET, the store says why (SignatureDoesNotMatch, ...).
        await client.send(new s3.ListObjectsV2Command({ Bucket: bucket, MaxKeys: 1 }), { abortSignal: signal });
        throw error;
      }
    },
    async head(key, signal) {
      try {
        const answer = await client.send(new s3.HeadObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
        return { key, size: answer.ContentLength ?? 0 };
      } catch (error) {
        if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined;
        throw error;
      }
    },
    async *list(prefix, signal) {
      let token: string | undefined;
      do {
        const page = await client.send(
          new s3.ListObjectsV2Command({ Bucket: bucket, Prefix: prefix || undefined, ContinuationToken: token }),
          { abortSignal: signal },
        );
        for (const o of page.Contents ?? []) if (o.Key !== undefined) yield { key: o.Key, size: o.Size ?? 0 };
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
    },
    async download(key, file, signal) {
      const directory = dirname(file);
      if (!directories.has(directory)) {
        await mkdir(directory, { recursive: true });
        directories.add(directory);
      }
      const get = async (from: number, ifMatch: string | undefined, signal: AbortSignal) => {
        const answer = await client.send(
          new s3.GetObjectCommand({
            Bucket: bucket,
            Key: key,
            ...(from > 0 ? { Range: `bytes=${from}-` } : {}),
            ...(ifMatch !== undefined ? { IfMatch: ifMatch } : {}),
          }),
          { abortSignal: signal },
        );
        return { body: answer.Body as Readable, length: answer.ContentLength, etag: answer.ETag, range: answer.ContentRange };
      };
      return downloadObject({ key, file, get, signal });
    },
    upload: (file, key, signal) => uploadFile({ client, s3, bucket, key, file, pool, tuning, partRetry, signal }),
  };
}

/**
 * The port's DataPlane over object stores: each `url:` is matched to the
 * data credential of its bucket, the credential's access to the bucket is
 * checked first (as OSMO's runtime does before any transfer), then the
 * objects or files move, several at once, each retried while its failure is
 * transient. Failures carry OSMO's data exit codes and the store's reason.
 */
import { lstat, readdir } from "node:fs/promises";
import { basename, join } from "node:path";
import { parseStorageUrl, RuntimeExitCode, type StorageUrl } from "../model/index.js";
import { DataTransferError, type DataPlane, type TransferReport, type UrlTransfer } from "../port/index.js";
import { runBounded, withRetries, type RetryPolicy } from "./bounded.js";
import { credentialFor, type DataCredential } from "./credential-payload.js";
import { openBucket, type BucketClient } from "./s3-store.js";
import { isRefusal, storeReason } from "./store-errors.js";
import { downloadTarget, listingPrefix, pathFilter, uploadKey } from "./transfer-plan.js";

export interface ObjectStoreOptions {
  /** The DATA credentials to choose from (read when a transfer first needs them: they are decrypted then). */
  credentials: () => readonly DataCredential[];
  /** Files moving at once per transfer (default 8). */
  filesInFlight?: number;
  retry?: RetryPolicy;
}

const DEFAULT_RETRY: RetryPolicy = { attempts: 3, firstDelayMs: 500 };

type Direction = "download" | "upload";
const FAILED_CODE = { download: RuntimeExitCode.DOWNLOAD_FAILED, upload: RuntimeExitCode.UPLOAD_FAILED } as const;

interface Reached {
  transfer: UrlTransfer;
  url: StorageUrl;
  bucket: BucketClient;
}

export function objectStoreDataPlane(options: ObjectStoreOptions): DataPlane {
  const inFlight = options.filesInFlight ?? 8;
  const retry = options.retry ?? DEFAULT_RETRY;

  /** Each transfer's bucket, opened with its credential and checked; the buckets to close afterwards. */
  async function reach(transfers: readonly UrlTransfer[], signal: AbortSignal): Promise<{ reached: Reached[]; close(): void }> {
    let credentials: readonly DataCredential[];
    try {
      credentials = options.credentials();
    } catch (error) {
      throw new DataTransferError(
        RuntimeExitCode.DATA_AUTHORIZATION_CHECK_FAILED,
        `the data credentials could not be read: ${(error as Error).message}`,
      );
    }
    const open = new Map<string, Promise<BucketClient & { close(): void }>>();
    // A bucket that could not be opened has nothing to close: its failure is the transfer's, reported there.
    const close = () => {
      for (const bucket of open.values())
        void bucket.then(
          (b) => b.close(),
          () => undefined,
        );
    };
    try {
      const reached = await Promise.all(
        transfers.map(async (transfer) => {
          const parsed = parseStorageUrl(transfer.url);
          if (!parsed.ok) throw new DataTransferError(RuntimeExitCode.DATA_ACCESS_UNAUTHORIZED, parsed.reason);
          const url = parsed.value;
          const credential = credentialFor(url, credentials);
          if (!credential)
            throw new DataTransferError(
              RuntimeExitCode.DATA_ACCESS_UNAUTHORIZED,
              `no data credential covers ${url.scheme}://${url.bucket}: set one with \`troupe credential set NAME --type data --payload endpoint=${url.scheme}://${url.bucket} access_key_id=... access_key=...\``,
            );
          const key = `${credential.name}\0${url.bucket}`;
          let bucket = open.get(key);
          if (!bucket) {
            bucket = openBucket(credential, url.bucket, retry).then(async (b) => {
              await checkAccess(b, credential, signal);
              return b;
            });
            open.set(key, bucket);
          }
          return { transfer, url, bucket: await bucket };
        }),
      );
      return { reached, close };
    } catch (error) {
      close();
      if (error instanceof DataTransferError || signal.aborted) throw error;
      throw new DataTransferError(
        RuntimeExitCode.DATA_AUTHORIZATION_CHECK_FAILED,
        `the data authorization check could not be made: ${storeReason(error)}`,
      );
    }
  }

  async function checkAccess(bucket: BucketClient, credential: DataCredential, signal: AbortSignal): Promise<void> {
    try {
      await withRetries((s) => bucket.checkAccess(s), retry, signal);
    } catch (error) {
      if (signal.aborted) throw error;
      const where = `s3://${bucket.bucket} with the data credential \`${credential.name}\``;
      if (isRefusal(error))
        throw new DataTransferError(RuntimeExitCode.DATA_ACCESS_UNAUTHORIZED, `data access unauthorized: ${where}: ${storeReason(error)}`);
      throw new DataTransferError(
        RuntimeExitCode.DATA_AUTHORIZATION_CHECK_FAILED,
        `the data authorization check could not be made: ${where}: ${storeReason(error)}`,
      );
    }
  }

  async function run(direction: Direction, transfers: readonly UrlTransfer[], signal: AbortSignal): Promise<TransferReport> {
    const started = Date.now();
    if (transfers.length === 0) return { files: 0, bytes: 0, ms: 0 };
    const { reached, close } = await reach(transfers, signal);
    const code = FAILED_CODE[direction];
    const totals = { files: 0, bytes: 0 };
    try {
      for (const target of reached) {
        let jobs: Array<(signal: AbortSignal) => Promise<number>>;
        try {
          jobs = direction === "download" ? await downloads(target, signal) : await uploads(target);
        } catch (error) {
          if (error instanceof DataTransferError || signal.aborted) throw error;
          throw new DataTransferError(code, `${direction} of ${target.transfer.url} failed: ${storeReason(error)}`);
        }
        const sizes = await runBounded(jobs, inFlight, signal);
        totals.files += sizes.length;
        totals.bytes += sizes.reduce((a, b) => a + b, 0);
      }
    } finally {
      close();
    }
    return { ...totals, ms: Date.now() - started };
  }

  /** One job per object to fetch: the URL's object itself, or every object under it that the regex keeps. */
  async function downloads({ transfer, url, bucket }: Reached, signal: AbortSignal) {
    const fetch = (key: string, file: string) => (s: AbortSignal) =>
      withRetries((r) => bucket.download(key, file, r), retry, s).catch((error: unknown) => {
        if (s.aborted && !(error instanceof DataTransferError)) throw error;
        throw new DataTransferError(RuntimeExitCode.DOWNLOAD_FAILED, `download of s3://${url.bucket}/${key} failed: ${storeReason(error)}`);
      });
    if (url.path !== "" && !url.path.endsWith("/")) {
      const object = await withRetries((s) => bucket.head(url.path, s), retry, signal);
      if (object) return [fetch(object.key, join(transfer.dir, basename(object.key)))];
    }
    const prefix = listingPrefix(url.path);
    const keep = pathFilter(transfer.regex);
    const jobs: Array<(signal: AbortSignal) => Promise<number>> = [];
    for await (const object of bucket.list(prefix, signal)) {
      const file = downloadTarget(transfer.dir, prefix, object.key, RuntimeExitCode.DOWNLOAD_FAILED);
      if (file !== undefined && keep(object.key.slice(prefix.length))) jobs.push(fetch(object.key, file));
    }
    return jobs;
  }

  /** One job per file of the directory that the regex keeps. */
  async function uploads({ transfer, url, bucket }: Reached) {
    const keep = pathFilter(transfer.regex);
    const files = (await filesUnder(transfer.dir)).filter(keep);
    return files.map((relative) => (s: AbortSignal) => {
      const key = uploadKey(url.path, relative);
      return withRetries((r) => bucket.upload(join(transfer.dir, relative), key, r), retry, s).catch((error: unknown) => {
        if (s.aborted && !(error instanceof DataTransferError)) throw error;
        throw new DataTransferError(
          RuntimeExitCode.UPLOAD_FAILED,
          `upload of ${relative} to s3://${url.bucket}/${key} failed: ${storeReason(error)}`,
        );
      });
    });
  }

  return {
    check: async (transfers, signal) => {
      if (transfers.length > 0) (await reach(transfers, signal)).close();
    },
    download: (transfers, signal) => run("download", transfers, signal),
    upload: (transfers, signal) => run("upload", transfers, signal),
  };
}

/** The regular files under `dir` (symbolic links and other kinds left out), "/"-separated relative paths, sorted. */
export async function filesUnder(dir: string, relative = ""): Promise<string[]> {
  const out: string[] = [];
  const entries = await readdir(join(dir, relative), { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return [];
    throw error;
  });
  for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const path = relative === "" ? entry.name : `${relative}/${entry.name}`;
    if (entry.isDirectory()) out.push(...(await filesUnder(dir, path)));
    else if (entry.isFile() && (await lstat(join(dir, path))).isFile()) out.push(path);
  }
  return out;
}

/**
 * The data seam of the port: moving a task's `url:` inputs and outputs
 * between an object store and directories the task sees. The engine asks
 * around a group's barrier (downloads while the member's sandbox comes up,
 * uploads once its command has ended); src/data/ does it through the AWS SDK,
 * and a cluster's runtime may do the same from its nodes.
 */

/** One `url:` input or output: the store's URL, the `regex` filter, and the directory on this machine. */
export interface UrlTransfer {
  url: string;
  regex?: string;
  dir: string;
}

/** What a transfer moved, for the task's events. */
export interface TransferReport {
  files: number;
  bytes: number;
  /** Wall time of the whole transfer, checks included. */
  ms: number;
}

export interface DataPlane {
  /** Whether every URL's store lets its credential in (before a task starts, for its outputs); rejects with a DataTransferError. */
  check(transfers: readonly UrlTransfer[], signal: AbortSignal): Promise<void>;
  /** Every `inputs` URL into its directory (made if needed); rejects with a DataTransferError. */
  download(transfers: readonly UrlTransfer[], signal: AbortSignal): Promise<TransferReport>;
  /** Every file of each directory (matching its regex) to its URL; rejects with a DataTransferError. */
  upload(transfers: readonly UrlTransfer[], signal: AbortSignal): Promise<TransferReport>;
}

/**
 * A transfer that failed, with OSMO's data exit code (model/statuses.ts
 * RuntimeExitCode: 2010 download, 2012 upload, 2013 the access check could not
 * be made, 2014 access refused) and the store's reason.
 */
export class DataTransferError extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
    this.name = "DataTransferError";
  }
}

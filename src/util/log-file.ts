/**
 * The file a log is appended to, one JSON line per write, bounded in size.
 *
 * Two threads of a server append to the same file (the main thread and the
 * HTTP thread, each with its own logger): every line is one `write` of an
 * O_APPEND descriptor, so lines never interleave. Only one of them rotates
 * (`maxBytes`): past it the file becomes `PATH.1` (the one before is dropped)
 * and a new one starts; the other follows within a second, reopening the
 * path once it names a new file. pino-roll, pino's own rotation, runs in a
 * transport worker of its own per logger: two of them over one file would
 * each rotate it, so troupe does this small part itself.
 */
import { closeSync, fstatSync, mkdirSync, openSync, renameSync, statSync, writeSync } from "node:fs";
import { dirname } from "node:path";

/** How often a writer looks at the path: whether another thread rotated it, how big it is now. */
const FOLLOW_MS = 1_000;

export interface LogFileOptions {
  /** Rotate once the file reaches this size (keeping the one before as PATH.1); unset: never rotate, only follow. */
  maxBytes?: number;
  /** Told once if the file cannot be written (a full disk, the home removed): nothing more is written. */
  onFailure?: (error: Error) => void;
}

export class LogFile {
  private fd = -1;
  private inode = 0;
  private size = 0;
  private followedAt = 0;
  private failed = false;

  constructor(
    readonly path: string,
    private readonly options: LogFileOptions = {},
  ) {
    mkdirSync(dirname(path), { recursive: true });
    this.open();
  }

  /** Appends one line (pino's stream interface). */
  write(line: string): void {
    if (this.failed) return;
    try {
      const now = Date.now();
      if (now - this.followedAt >= FOLLOW_MS) this.follow(now);
      this.size += writeSync(this.fd, line);
      if (this.options.maxBytes !== undefined && this.size >= this.options.maxBytes) this.rotate();
    } catch (error) {
      this.failed = true;
      this.options.onFailure?.(error as Error);
    }
  }

  close(): void {
    if (this.fd < 0) return;
    closeSync(this.fd);
    this.fd = -1;
  }

  private open(): void {
    // Owner only: a server's log names its users and workflows.
    this.fd = openSync(this.path, "a", 0o600);
    const stat = fstatSync(this.fd);
    this.inode = stat.ino;
    this.size = stat.size;
  }

  /** Reopens the path when it names another file than ours (rotated by the other thread); takes up its size. */
  private follow(now: number): void {
    this.followedAt = now;
    let current;
    try {
      current = statSync(this.path);
    } catch (error) {
      // Removed (by hand, or between the other thread's rename and its reopen): start it again.
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
    if (current?.ino === this.inode) {
      this.size = current.size;
      return;
    }
    this.close();
    this.open();
  }

  private rotate(): void {
    renameSync(this.path, `${this.path}.1`);
    this.close();
    this.open();
  }
}

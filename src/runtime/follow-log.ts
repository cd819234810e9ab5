/**
 * A log file read as a stream from its start, followed while its writer
 * lives (woken by inotify on the file, with a slow timer for the writes it
 * may miss), and ended once the writer has ended and everything written is
 * read: the local implementation of GroupHandle.logs.
 */
import { open, type FileHandle } from "node:fs/promises";
import { watch, type FSWatcher } from "node:fs";
import { Readable } from "node:stream";

const CHUNK = 64 * 1024;
/** How often to look even without a notification (a file created after the watch began, a missed event). */
const SAFETY_POLL_MS = 250;

export function followLog(path: string, writerEnded: Promise<unknown>): Readable {
  let file: FileHandle | undefined;
  let offset = 0;
  let ended = false;
  let watcher: FSWatcher | undefined;
  let timer: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;
  void writerEnded.finally(() => {
    ended = true;
    wake?.();
  });

  async function next(): Promise<Buffer | null> {
    for (;;) {
      file ??= await open(path, "r").catch(() => undefined);
      if (file) {
        const buffer = Buffer.alloc(CHUNK);
        const { bytesRead } = await file.read(buffer, 0, CHUNK, offset);
        if (bytesRead > 0) {
          offset += bytesRead;
          return buffer.subarray(0, bytesRead);
        }
      }
      // Nothing new: done once the writer has ended (read once more after it did), else wait for a change.
      if (ended) {
        if (file) {
          const { bytesRead } = await file.read(Buffer.alloc(1), 0, 1, offset);
          if (bytesRead > 0) continue;
        }
        return null;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        if (!watcher && file) watcher = watchQuietly(path, () => wake?.());
        timer = setTimeout(resolve, SAFETY_POLL_MS);
      });
      clearTimeout(timer);
      wake = undefined;
    }
  }

  return new Readable({
    read() {
      next().then(
        (chunk) => this.push(chunk),
        (error: Error) => this.destroy(error),
      );
    },
    destroy(error, callback) {
      watcher?.close();
      clearTimeout(timer);
      const closing = file?.close() ?? Promise.resolve();
      void closing.then(
        () => callback(error),
        () => callback(error),
      );
    },
  });
}

function watchQuietly(path: string, onChange: () => void): FSWatcher | undefined {
  try {
    const watcher = watch(path, onChange);
    // A watch that fails later (the file removed) leaves the timer to finish the stream.
    watcher.on("error", () => watcher.close());
    return watcher;
  } catch {
    return undefined; // no inotify for this file: the timer alone follows it
  }
}

/**
 * Watching an attempt's control directory for troupe-init's files. Through
 * inotify (fs.watch) where it can be had; where it cannot, by looking every
 * POLL_MS: inotify instances are counted per user over the whole machine
 * (128 by default, and every container's troupe-init holds one as root), so
 * a busy machine runs out of them (EMFILE), and a task must not fail for it.
 */
import { watch as fsWatch } from "node:fs";
import { tolerated } from "../../util/log.js";

const POLL_MS = 50;

export interface ControlWatch {
  close(): void;
}

/** `fs.watch`'s form, for a test to give one that fails as a machine out of inotify instances does. */
export type WatchFn = (dir: string, listener: (event: string, name: string | null) => void) => { close(): void };

/** Calls `changed(name)` on each change in `dir` (name null: unknown, or a look of the fallback poll). */
export function watchControlDir(dir: string, changed: (name: string | null) => void, watch: WatchFn = fsWatch): ControlWatch {
  try {
    const watcher = watch(dir, (_, name) => changed(name));
    return { close: () => watcher.close() };
  } catch (error) {
    tolerated("cannot watch a container's control directory: looking every 50 ms instead", { dir }, "debug")(error);
    const timer = setInterval(() => changed(null), POLL_MS);
    return { close: () => clearInterval(timer) };
  }
}

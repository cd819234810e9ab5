/**
 * A directory tree removed without anyone waiting for it: renamed into a
 * trash directory beside it at once (its path is free again, and nothing that
 * looks there finds half of it), then removed by a detached `rm -rf` that
 * ends by itself, troupe gone or not. A Slurm run's directory on a cluster's
 * shared file system (NFS, usually) holds a few files per member: removed in
 * troupe's process, every `troupe run` waited for it after its record was
 * final (a run of thousands of members, for as long as NFS takes to remove
 * their files). What a removal cut short leaves in the trash goes at the next
 * emptyTrash.
 */
import { spawn } from "node:child_process";
import { mkdirSync, readdirSync, renameSync, rmSync } from "node:fs";
import { basename, join } from "node:path";

/**
 * Moves `dir` into `trash` (which must be on the same file system: a sibling
 * of what holds `dir`) and removes it from there in the background. Nothing
 * when `dir` does not exist.
 */
export function discardTree(dir: string, trash: string): void {
  const aside = moveToTrash(dir, trash);
  if (aside !== undefined) removeInBackground([aside]);
}

/**
 * Moves `dir` into `trash` (on the same file system), for an emptyTrash to remove with the rest: its path
 * there, or undefined when `dir` does not exist.
 */
export function moveToTrash(dir: string, trash: string): string | undefined {
  mkdirSync(trash, { recursive: true });
  const aside = join(trash, `${basename(dir)}.${process.pid}.${Date.now()}`);
  try {
    renameSync(dir, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  return aside;
}

/** Removes in the background what is in `trash` (left by removals cut short: a machine's restart, a kill). */
export function emptyTrash(trash: string): void {
  let entries: string[];
  try {
    entries = readdirSync(trash);
  } catch {
    return; // no trash yet
  }
  if (entries.length > 0) removeInBackground(entries.map((entry) => join(trash, entry)));
}

/**
 * Tried again for a while: a process whose working directory is in there (a Slurm job's, whose helpers leave
 * their last files as Slurm ends them: seconds) may still add files as it goes. Once `rm` succeeds nothing can:
 * no file is made in a directory that is gone.
 */
const REMOVAL_TRIES = 25;
const REMOVAL_PAUSE_S = 0.5;

function removeInBackground(paths: string[]): void {
  // Counted by the shell itself (no `seq` process).
  const script = `tries=0; while [ "$tries" -lt ${REMOVAL_TRIES} ]; do tries=$((tries + 1)); rm -rf -- "$@" 2>/dev/null && exit 0; sleep ${REMOVAL_PAUSE_S}; done; exit 1`;
  // Its own session: a Ctrl-C at troupe's terminal does not cut it short.
  const rm = spawn("sh", ["-c", script, "sh", ...paths], { stdio: "ignore", detached: true });
  // No shell to start: removed here then, waited for.
  rm.once("error", () => {
    for (const path of paths) rmSync(path, { recursive: true, force: true });
  });
  rm.unref();
}

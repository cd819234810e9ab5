/**
 * What troupe-init (native/init.c) says of a container's command, and why
 * troupe can believe it although the task can write the same directory: the
 * release ("go") carries a random nonce for the attempt, which troupe-init
 * takes and removes before the command starts (and keeps where the task
 * cannot read it); its verdict is accepted only with that nonce. The nonce is
 * also kept beside the control directory, not in it (only the directory is
 * mounted into the container), so that a later troupe process re-attaching
 * the attempt (kept tasks) can check the verdict too.
 */
import { randomBytes } from "node:crypto";
import { closeSync, constants, fstatSync, openSync, readFileSync, readSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ExitInfo } from "../types.js";

export interface Verdict {
  /** The command's exit code (128 + N for a signal N). */
  code: number;
  /** The memory cgroup killed it. */
  oom: boolean;
}

const nonceFile = (controlDir: string) => `${controlDir}.nonce`;

/** A file of the control directory, whole or not at all (a rename). */
function writeControl(controlDir: string, name: string, text: string): void {
  writeFileSync(join(controlDir, `.${name}`), text);
  renameSync(join(controlDir, `.${name}`), join(controlDir, name));
}

/**
 * Releases the container's command: a fresh nonce, kept beside the control
 * directory, and a fresh key for a restart in place (the task sees neither:
 * troupe-init takes and removes "go" before the command starts), then "go".
 */
export function releaseWithNonce(controlDir: string): { nonce: string; restartKey: string } {
  const { nonce, restartKey, go } = newRelease(controlDir);
  writeControl(controlDir, "go", go);
  return { nonce, restartKey };
}

/**
 * A release's nonce (kept beside the control directory) and restart key, and
 * the text of its "go", for whoever writes it where troupe-init sees it at
 * once (a Slurm node's helper: inotify does not see another machine's writes).
 */
export function newRelease(controlDir: string): { nonce: string; restartKey: string; go: string } {
  const nonce = randomBytes(24).toString("hex");
  const restartKey = randomBytes(24).toString("hex");
  writeFileSync(nonceFile(controlDir), nonce);
  return { nonce, restartKey, go: `${nonce} ${restartKey}\n` };
}

/** Asks troupe-init for a restart in place (init.c): the command stopped, every process killed after `graceMs`. */
export function requestRestart(controlDir: string, restartKey: string, graceMs: number): void {
  writeControl(controlDir, "restart", `restart ${restartKey} ${Math.max(0, Math.round(graceMs))}\n`);
}

/** Whether troupe-init says the command of the release with `nonce` was stopped for a restart (and nothing of it is left). */
export function stoppedForRestart(controlDir: string, nonce: string): boolean {
  return stoppedOf(readSmallFile(join(controlDir, "stopped")), nonce);
}

/** Whether `text` (troupe-init's "stopped", as read where it was written) says so for the release with `nonce`. */
export function stoppedOf(text: string | undefined, nonce: string | undefined): boolean {
  const match = text === undefined ? null : /^stopped (\S+) (\d+)\n$/.exec(text);
  return match !== null && nonce !== undefined && match[1] === nonce;
}

/** The nonce an attempt was released with (undefined: it never was, or its files are gone). */
export function releasedNonce(controlDir: string): string | undefined {
  try {
    return readFileSync(nonceFile(controlDir), "utf8").trim() || undefined;
  } catch {
    // No file: never released (or its files are gone), as said above.
    return undefined;
  }
}

/** troupe-init's verdict, when there is one with the attempt's nonce; anything else in its place is the task's. */
export function readVerdict(controlDir: string, nonce: string | undefined): Verdict | undefined {
  if (nonce === undefined) return undefined;
  return verdictOf(readSmallFile(join(controlDir, "verdict")), nonce);
}

/** A verdict's text (as read where troupe-init wrote it), believed only with the release's nonce. */
export function verdictOf(text: string | undefined, nonce: string | undefined): Verdict | undefined {
  if (text === undefined || nonce === undefined) return undefined;
  const match = /^verdict (\S+) (\d+) ([01])\n$/.exec(text);
  if (!match || match[1] !== nonce) return undefined;
  return { code: Number(match[2]), oom: match[3] === "1" };
}

/**
 * The file's first bytes, if it is a regular file and no symbolic link: the
 * task may have put anything at that name (a link to /dev/zero or to a FIFO
 * of the host would have troupe read for ever).
 */
function readSmallFile(path: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    // None, or a link the task put there: no verdict.
    return undefined;
  }
  try {
    if (!fstatSync(fd).isFile()) return undefined;
    const buffer = Buffer.alloc(512);
    return buffer.subarray(0, readSync(fd, buffer, 0, buffer.length, 0)).toString("utf8");
  } catch {
    // Unreadable (whatever the task made of it): no verdict.
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/**
 * How a released attempt ended: troupe-init's word when it gave one (the
 * engine's exit code can be its own, e.g. podman's 127 when it lost a race
 * with the container's removal), else the engine's (troupe-init was killed:
 * a stop's SIGKILL).
 */
export function releasedExit(engineCode: number, verdict: Verdict | undefined): ExitInfo {
  if (!verdict) return { code: engineCode };
  return verdict.oom ? { code: verdict.code, reason: "killed: more memory than its limit" } : { code: verdict.code };
}

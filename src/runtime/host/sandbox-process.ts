/**
 * One started sandbox process (bwrap), however it was started: through the
 * troupe-spawner helper (the fast path, spawner.ts) or Node's child_process
 * (the fallback when the helper was not built). Both write the task's log
 * and report the process's status channel and its end the same way.
 */
import { spawn } from "node:child_process";
import { closeSync, createWriteStream, openSync } from "node:fs";
import type { Socket } from "node:net";
import { constants } from "node:os";
import { hasMaskable } from "../../util/secret-mask.js";
import { MaskedLog } from "../masked-log.js";
import { BLOCK_FD, STATUS_FD } from "./sandbox.js";

export interface SandboxProcessEvents {
  /** Bytes from the process's status channel (fd 3). */
  status(chunk: Buffer): void;
  /** Live output; only when started with `live`. The log file has it regardless. */
  output?(chunk: Buffer): void;
  /**
   * The process has ended and its log is complete on disk; `code` is its exit
   * code (128 + N for signal N), or undefined with `error` when it never ran.
   */
  exit(code: number | undefined, error?: string): void;
}

export interface SandboxProcess {
  /** Closes the barrier (fd 4): the sandbox starts its command. */
  release(): void;
  /** Signals the process (or `pid`, one of its descendants) while it has not ended. */
  signal(name: NodeJS.Signals, pid?: number): void;
  /**
   * troupe's own sandbox, or a supervised bwrap, only: stop the command for a
   * restart in place (SIGTERM, every process killed after `graceMs`); the
   * sandbox says {"stopped": N} on its status channel and waits for the next
   * `release`.
   */
  restart?(graceMs: number): void;
}

export interface SandboxStart {
  /** The process to start: bwrap and its arguments, or (with `directives`) the task's command. */
  argv: string[];
  /** troupe-spawner's own sandbox (spawnerDirectives), instead of starting `argv` as it is. */
  directives?: string[];
  logPath: string;
  /** Output comes back through `events.output` (and still goes to the log). */
  live: boolean;
  /**
   * Secret values to mask in the log and the live output (the credentials'
   * the task was given): its output then comes through troupe (MaskedLog)
   * instead of going straight to the log file.
   */
  secrets?: readonly string[];
  /**
   * Keep the task alive if troupe ends: it runs under a keeper that writes its
   * exit code into this directory (see kept-task.ts). Only troupe-spawner keeps
   * tasks; `live` output is not available for them.
   */
  keep?: string;
  /**
   * The command starts as soon as the sandbox is up, without a `release()`
   * (a group of one: PrepareOptions.releaseWhenReady). Through
   * troupe-spawner, the start and its release go out in one write.
   */
  released?: boolean;
  /**
   * `argv` is bwrap starting `troupe-spawner supervise` as its PID 1
   * (SandboxSpec.supervisor): troupe-spawner only, never kept.
   */
  supervised?: boolean;
}

export type StartSandboxProcess = (start: SandboxStart, events: SandboxProcessEvents) => SandboxProcess;

export function signalNumber(name: NodeJS.Signals): number {
  return constants.signals[name];
}

/** Node's own child_process: a fork of the whole Node process per task (about 2 ms). */
export const startWithNode: StartSandboxProcess = ({ argv, directives, logPath, live, supervised, secrets, released }, events) => {
  if (directives || supervised) throw new Error("troupe's own sandbox, and a supervised bwrap, need the troupe-spawner helper");
  const masked = hasMaskable(secrets);
  // Without a live view or secrets to mask, output goes straight from the task to its log file.
  const logFd = live || masked ? undefined : openSync(logPath, "a");
  const stdio: Array<"ignore" | "pipe" | number> = ["ignore", logFd ?? "pipe", logFd ?? "pipe"];
  stdio[STATUS_FD] = "pipe";
  stdio[BLOCK_FD] = "pipe";
  const child = (() => {
    try {
      return spawn(argv[0] as string, argv.slice(1), { stdio });
    } finally {
      if (logFd !== undefined) closeSync(logFd);
    }
  })();
  const status = child.stdio[STATUS_FD] as Socket;
  const barrier = child.stdio[BLOCK_FD] as Socket;
  // EPIPE/ECONNRESET as the sandbox ends: its exit (child "exit") says how it ended.
  status.on("error", () => undefined);
  barrier.on("error", () => undefined);
  status.on("data", (chunk: Buffer) => events.status(chunk));

  const log = logFd !== undefined ? undefined : masked ? new MaskedLog(logPath, secrets, events.output) : createWriteStream(logPath);
  if (log) {
    const forward =
      log instanceof MaskedLog
        ? (chunk: Buffer) => log.write(chunk)
        : (chunk: Buffer) => {
            log.write(chunk);
            events.output?.(chunk);
          };
    child.stdout!.on("data", forward);
    child.stderr!.on("data", forward);
  }
  let spawnError: string | undefined;
  child.on("error", (error) => (spawnError = `cannot start ${argv[0]}: ${error.message}`));
  child.on("close", (code, signal) => {
    status.destroy();
    barrier.destroy();
    const finish = () => (spawnError ? events.exit(undefined, spawnError) : events.exit(code ?? 128 + (signal ? signalNumber(signal) : 0)));
    // An attempt has ended only once its log is complete on disk.
    if (log) log.end(() => finish());
    else finish();
  });
  if (released) barrier.end("go");
  return {
    release: () => barrier.end("go"),
    signal(name, pid) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      try {
        process.kill(pid ?? (child.pid as number), name);
      } catch {
        // Already gone.
      }
    },
  };
};

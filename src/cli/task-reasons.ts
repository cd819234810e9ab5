/**
 * Why a task is where it is, in words, for `troupe query`, `workflow query`
 * and the summary after a run: the recorded reason of its last change, with
 * what its exit code means (SPEC-REFERENCE "Exit codes"; 128+N is signal N),
 * and "reused from RUN" for a task a restart took over.
 */
import type { TaskRecord } from "../model/index.js";

const SIGNALS: Record<number, string> = {
  1: "SIGHUP: its terminal or session went away",
  2: "SIGINT: interrupted",
  3: "SIGQUIT",
  4: "SIGILL: an illegal instruction",
  6: "SIGABRT: aborted, often a failed assertion",
  7: "SIGBUS: a bus error",
  8: "SIGFPE: an arithmetic error",
  9: "SIGKILL: out of memory, or stopped by force",
  11: "SIGSEGV: a segmentation fault",
  13: "SIGPIPE: it wrote to a pipe nobody read",
  15: "SIGTERM: asked to stop",
};

const CODES: Record<number, string> = {
  126: "the command could not be executed (not executable, or no permission)",
  127: "command not found",
  2002: "unknown runtime error",
  2010: "an input download failed",
  2011: "a mount failed",
  2012: "an output upload failed",
  2013: "the data authorization check failed",
  2014: "data access unauthorized",
  2024: "barrier synchronization failed",
  3000: "an upstream group failed",
  3001: "backend error",
  3002: "server error",
  3003: "start error",
  3004: "evicted",
  3005: "start timeout",
  3006: "preempted",
  4000: "unknown",
};

/** What exit code `code` says beyond "it failed"; undefined for 0, 1 and other codes a program chooses itself. */
export function exitCodeMeaning(code: number): string | undefined {
  if (CODES[code] !== undefined) return CODES[code];
  if (code > 128 && code < 160) {
    const signal = code - 128;
    return `killed by ${SIGNALS[signal] ?? `signal ${signal}`}`;
  }
  if (code >= 2030 && code <= 2040) return "data or runtime error";
  return undefined;
}

const EXITED = /^exited with (-?\d+)(?!\d)( \()?/;

/** The task's reason as a person reads it; `-` for a task that simply completed. */
export function taskReason(task: Pick<TaskRecord, "status" | "exit_code" | "reason" | "reused_from">): string {
  if (task.reused_from !== undefined) return `reused from ${task.reused_from}`;
  if (task.status === "COMPLETED" && task.exit_code === 0 && (task.reason === null || /^exited with 0\b/.test(task.reason))) return "-";
  const reason = task.reason ?? (task.exit_code !== null ? `exited with ${task.exit_code}` : "");
  const exited = EXITED.exec(reason);
  // "exited with 137 (killed: more memory than its limit)": the runtime said why already.
  if (exited && !exited[2]) {
    const meaning = exitCodeMeaning(Number(exited[1]));
    if (meaning) return `exited with ${exited[1]} (${meaning})${reason.slice(exited[0].length)}`;
  }
  if (!reason && task.exit_code !== null) {
    const meaning = exitCodeMeaning(task.exit_code);
    if (meaning) return `exit code ${task.exit_code}: ${meaning}`;
  }
  return reason || "-";
}

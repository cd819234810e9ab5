/**
 * What an attempt's end means, decided purely from the outcome the runtime
 * reported and the task's rules: the task's status (or a reschedule), and
 * what its end does to its group (lead rules, ignoreNonleadStatus). The run
 * applies the decisions (run.ts); the tables in test/engine/exit-policy.test.ts
 * pin them down.
 */
import { exitActionFor, type CompiledGroup, type CompiledTask, type ExitActionRule } from "../plan/index.js";
import type { MemberOutcome } from "../port/index.js";
import { PlatformExitCode, isFailure, type GroupStatus, type TaskStatus } from "./statuses.js";

export type ExitDecision =
  | { kind: "finish"; status: TaskStatus; reason: string; exitCode: number | null }
  /** A new attempt; `exitCode` is recorded on the one that ended, `reason` is its RESCHEDULED transition's. */
  | { kind: "reschedule"; exitCode: number; reason: string };

export interface ExitRules {
  exitActions: readonly ExitActionRule[];
  poolExitActions?: readonly ExitActionRule[];
  /** The attempt that ended (0 for the first). */
  retryId: number;
  /** Retries allowed per task (OSMO's max_retry_per_task). */
  maxRetries: number;
  /** Whether the attempt's sandbox had come up (ready); before that, a failure is one to start it. */
  started: boolean;
}

/**
 * Outcomes the pool causes, with their platform exit code and the status they
 * end in. Exit actions cannot name these codes (they are for the user's 0-255):
 * preemption reschedules (while retries are left), as OSMO does; eviction and
 * a start timeout fail.
 */
const POOL_CAUSED = {
  evicted: { code: PlatformExitCode.EVICTED, status: "FAILED_EVICTED", reschedules: false, what: "evicted" },
  preempted: { code: PlatformExitCode.PREEMPTED, status: "FAILED_PREEMPTED", reschedules: true, what: "preempted" },
  "start-timeout": {
    code: PlatformExitCode.START_TIMEOUT,
    status: "FAILED_START_TIMEOUT",
    reschedules: false,
    what: "did not start in time",
  },
} as const;

export function decideExit(outcome: MemberOutcome, rules: ExitRules): ExitDecision {
  const couldNotStart = (message: string) => (rules.started ? message : `could not start: ${message}`);
  switch (outcome.kind) {
    case "lost":
      return finish("FAILED_SERVER_ERROR", `how it ended is unknown: ${outcome.message}`, PlatformExitCode.SERVER_ERROR);
    case "data-failed":
      return finish("FAILED", outcome.message, outcome.code);
    case "start-failed":
      return finish("FAILED_START_ERROR", couldNotStart(outcome.message), PlatformExitCode.START_ERROR);
    case "image-pull":
      return finish("FAILED_IMAGE_PULL", couldNotStart(outcome.message), PlatformExitCode.START_ERROR);
    case "backend-error":
      return finish("FAILED_BACKEND_ERROR", couldNotStart(outcome.message), PlatformExitCode.BACKEND_ERROR);
    case "evicted":
    case "preempted":
    case "start-timeout": {
      const cause = POOL_CAUSED[outcome.kind];
      const said = `${cause.what}: ${outcome.message}`;
      if (cause.reschedules && rules.retryId < rules.maxRetries)
        return { kind: "reschedule", exitCode: cause.code, reason: `${said}: RESCHEDULE (${retryOf(rules)})` };
      const noRetries = cause.reschedules ? `: RESCHEDULE, but no retries are left (limit ${rules.maxRetries})` : "";
      return finish(cause.status, said + noRetries, cause.code);
    }
    case "exited": {
      const { code } = outcome;
      const action = exitActionFor(code, rules.exitActions, rules.poolExitActions);
      const exited = `exited with ${code}${outcome.reason ? ` (${outcome.reason})` : ""}`;
      if (action === "COMPLETE") return finish("COMPLETED", exited, code);
      if (action === "FAIL") return finish("FAILED", exited, code);
      if (rules.retryId < rules.maxRetries)
        return { kind: "reschedule", exitCode: code, reason: `exited with ${code}: RESCHEDULE (${retryOf(rules)})` };
      return finish("FAILED", `exited with ${code}: RESCHEDULE, but no retries are left (limit ${rules.maxRetries})`, code);
    }
  }
}

function retryOf(rules: ExitRules): string {
  return `retry ${rules.retryId + 1} of ${rules.maxRetries}`;
}

function finish(status: TaskStatus, reason: string, exitCode: number | null): ExitDecision {
  return { kind: "finish", status, reason, exitCode };
}

/** How a group ends because one of its tasks ended: its status and what its unfinished tasks become. */
export interface GroupEnding {
  status: GroupStatus;
  reason: string;
  taskStatus: TaskStatus;
  taskReason: string;
}

/**
 * SPEC-REFERENCE, "Group semantics": the lead's end ends the group (with the
 * lead's status; siblings take COMPLETED or FAILED, "lead task finished");
 * with ignoreNonleadStatus false, a failing non-lead fails it. Otherwise
 * undefined: the group goes on.
 */
export function groupEndingFor(group: CompiledGroup, task: CompiledTask, status: TaskStatus): GroupEnding | undefined {
  if (task.lead) {
    const completed = status === "COMPLETED";
    return {
      status: status as GroupStatus,
      reason: `lead task ${task.name} ${completed ? "completed" : "failed"}`,
      taskStatus: completed ? "COMPLETED" : "FAILED",
      taskReason: "lead task finished",
    };
  }
  if (isFailure(status) && !group.ignoreNonleadStatus)
    return {
      status: "FAILED",
      reason: `task ${task.name} failed (ignoreNonleadStatus is false)`,
      taskStatus: "FAILED",
      taskReason: `group failed: ${task.name} failed`,
    };
  return undefined;
}

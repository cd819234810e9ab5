/**
 * Statuses of tasks, groups and workflows (OSMO's names), the one table of
 * allowed transitions, and the rules that read them.
 */

export const FAILURE_STATUSES = [
  "FAILED",
  "FAILED_CANCELED",
  "FAILED_SERVER_ERROR",
  "FAILED_BACKEND_ERROR",
  "FAILED_EXEC_TIMEOUT",
  "FAILED_QUEUE_TIMEOUT",
  "FAILED_IMAGE_PULL",
  "FAILED_UPSTREAM",
  "FAILED_EVICTED",
  "FAILED_START_ERROR",
  "FAILED_START_TIMEOUT",
  "FAILED_PREEMPTED",
] as const;
export type FailureStatus = (typeof FAILURE_STATUSES)[number];

export const TaskStatus = {
  SUBMITTING: "SUBMITTING",
  WAITING: "WAITING",
  PROCESSING: "PROCESSING",
  SCHEDULING: "SCHEDULING",
  INITIALIZING: "INITIALIZING",
  RUNNING: "RUNNING",
  COMPLETED: "COMPLETED",
  RESCHEDULED: "RESCHEDULED",
  ...(Object.fromEntries(FAILURE_STATUSES.map((s) => [s, s])) as { [K in FailureStatus]: K }),
} as const;
export type TaskStatus = (typeof TaskStatus)[keyof typeof TaskStatus];

/** Groups share the task statuses but for RESCHEDULED (only an attempt is rescheduled). */
export type GroupStatus = Exclude<TaskStatus, "RESCHEDULED">;

export const WorkflowStatus = {
  PENDING: "PENDING",
  RUNNING: "RUNNING",
  WAITING: "WAITING",
  COMPLETED: "COMPLETED",
  FAILED_SUBMISSION: "FAILED_SUBMISSION",
  ...(Object.fromEntries(FAILURE_STATUSES.map((s) => [s, s])) as { [K in FailureStatus]: K }),
} as const;
export type WorkflowStatus = (typeof WorkflowStatus)[keyof typeof WorkflowStatus];

const FAILURES = new Set<string>(FAILURE_STATUSES);

export function isFailure(status: string): boolean {
  return FAILURES.has(status) || status === "FAILED_SUBMISSION";
}

export function isFinal(status: string): boolean {
  return status === "COMPLETED" || status === "RESCHEDULED" || isFailure(status);
}

/** Platform exit codes (SPEC-REFERENCE "Exit codes"). */
export const PlatformExitCode = {
  UPSTREAM_FAILED: 3000,
  BACKEND_ERROR: 3001,
  SERVER_ERROR: 3002,
  START_ERROR: 3003,
  EVICTED: 3004,
  START_TIMEOUT: 3005,
  PREEMPTED: 3006,
  UNKNOWN: 4000,
} as const;

const ANY_FAILURE: readonly string[] = FAILURE_STATUSES;

/** From each status, where a task attempt or a group may go next. Final statuses go nowhere. */
const NEXT: Record<string, readonly string[]> = {
  SUBMITTING: ["WAITING", ...ANY_FAILURE],
  // COMPLETED: in a restart, a group that completed in the run it restarts.
  WAITING: ["PROCESSING", "SCHEDULING", "COMPLETED", ...ANY_FAILURE],
  PROCESSING: ["SCHEDULING", ...ANY_FAILURE],
  SCHEDULING: ["INITIALIZING", ...ANY_FAILURE],
  // A sibling can be told the lead's outcome before its own command started.
  INITIALIZING: ["RUNNING", "COMPLETED", "RESCHEDULED", ...ANY_FAILURE],
  // RUNNING again: a command restarted in place (a sibling was rescheduled), in the same attempt and sandbox.
  RUNNING: ["RUNNING", "COMPLETED", "RESCHEDULED", ...ANY_FAILURE],
  PENDING: ["RUNNING", "WAITING", ...ANY_FAILURE, "FAILED_SUBMISSION"],
};

export class IllegalTransitionError extends Error {
  constructor(
    readonly subject: string,
    readonly from: string,
    readonly to: string,
  ) {
    super(`illegal transition of ${subject}: ${from} -> ${to}`);
  }
}

/** Throws unless `from -> to` is allowed. `from` null is the creation of the subject. */
export function checkTransition(subject: string, from: string | null, to: string): void {
  if (from === null) return;
  if (!(NEXT[from] ?? []).includes(to)) throw new IllegalTransitionError(subject, from, to);
}

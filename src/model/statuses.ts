/**
 * Statuses of tasks, groups and workflows (OSMO's names) and what they mean:
 * which are failures, which are final. The one home of this vocabulary; the
 * engine adds the transition table (engine/statuses.ts), every other layer
 * (and the web UI) reads it from here.
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

const failures = Object.fromEntries(FAILURE_STATUSES.map((s) => [s, s])) as { [K in FailureStatus]: K };

export const TaskStatus = {
  SUBMITTING: "SUBMITTING",
  WAITING: "WAITING",
  PROCESSING: "PROCESSING",
  SCHEDULING: "SCHEDULING",
  INITIALIZING: "INITIALIZING",
  RUNNING: "RUNNING",
  COMPLETED: "COMPLETED",
  RESCHEDULED: "RESCHEDULED",
  ...failures,
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
  ...failures,
} as const;
export type WorkflowStatus = (typeof WorkflowStatus)[keyof typeof WorkflowStatus];

/** Every status a run (workflow) can have, in the order people read them. */
export const RUN_STATUSES: readonly WorkflowStatus[] = [
  "PENDING",
  "RUNNING",
  "WAITING",
  "COMPLETED",
  "FAILED",
  "FAILED_SUBMISSION",
  ...FAILURE_STATUSES.filter((s) => s !== "FAILED"),
];

/** Every way a task attempt, group or run fails (a run's FAILED_SUBMISSION too): what `--status FAILED` lists. */
export const FAILED_STATUSES: readonly string[] = [...FAILURE_STATUSES, "FAILED_SUBMISSION"];

/** The statuses after which a task attempt, group or run does not change again (an attempt RESCHEDULED gave way to the next one). */
export const FINAL_STATUSES: readonly string[] = ["COMPLETED", "RESCHEDULED", ...FAILED_STATUSES];

const FAILURES = new Set<string>(FAILED_STATUSES);

export function isFailure(status: string): boolean {
  return FAILURES.has(status);
}

/** A task attempt, group or run that will not change again (an attempt RESCHEDULED gave way to the next one). */
export function isFinal(status: string): boolean {
  return status === "COMPLETED" || status === "RESCHEDULED" || isFailure(status);
}

/**
 * Failures that say nothing of the task's own doing: an upstream task's, a cancel, a timeout, the server's
 * or the machine's (nothing of the task ran, or it was stopped from outside).
 */
const NOT_ITS_OWN_DOING = new Set<string>([
  "FAILED_UPSTREAM",
  "FAILED_CANCELED",
  "FAILED_EXEC_TIMEOUT",
  "FAILED_QUEUE_TIMEOUT",
  "FAILED_SERVER_ERROR",
  "FAILED_EVICTED",
  "FAILED_START_ERROR",
  "FAILED_IMAGE_PULL",
]);

/**
 * Whether an attempt has error logs, as OSMO says (TaskGroupStatus.has_error_logs): it was rescheduled, or
 * failed by its own doing.
 */
export function hasErrorLogs(status: string): boolean {
  if (status === "RESCHEDULED") return true;
  return isFailure(status) && !NOT_ITS_OWN_DOING.has(status);
}

/** Platform exit codes (SPEC-REFERENCE "Exit codes"). */
/** OSMO's data and runtime exit codes (SPEC-REFERENCE, "Exit codes"). */
export const RuntimeExitCode = {
  UNKNOWN_RUNTIME_ERROR: 2002,
  DOWNLOAD_FAILED: 2010,
  MOUNT_FAILED: 2011,
  UPLOAD_FAILED: 2012,
  DATA_AUTHORIZATION_CHECK_FAILED: 2013,
  DATA_ACCESS_UNAUTHORIZED: 2014,
  BARRIER_FAILED: 2024,
} as const;

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

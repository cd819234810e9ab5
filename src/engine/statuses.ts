/**
 * The one table of allowed transitions of tasks, groups and workflows; the
 * statuses themselves are the model's (model/statuses.ts).
 */
import { FAILURE_STATUSES } from "../model/index.js";

export {
  FAILURE_STATUSES,
  isFailure,
  isFinal,
  PlatformExitCode,
  RuntimeExitCode,
  TaskStatus,
  WorkflowStatus,
  type FailureStatus,
  type GroupStatus,
} from "../model/index.js";

const ANY_FAILURE: readonly string[] = FAILURE_STATUSES;

/** From each status, where a task attempt or a group may go next. Final statuses go nowhere. */
const NEXT: Record<string, readonly string[]> = {
  SUBMITTING: ["WAITING", ...ANY_FAILURE],
  // COMPLETED: in a restart, a group that completed in the run it restarts.
  WAITING: ["PROCESSING", "SCHEDULING", "COMPLETED", ...ANY_FAILURE],
  PROCESSING: ["SCHEDULING", ...ANY_FAILURE],
  // SCHEDULING again: a group submitted to a cluster that places it (the engine admitted it).
  // RESCHEDULED: a cluster may take a placed member away (preempted) before the rest of its group is placed.
  SCHEDULING: ["SCHEDULING", "INITIALIZING", "RESCHEDULED", ...ANY_FAILURE],
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

/**
 * How a member's attempt ended, as the runtime saw it. Runtimes report; the
 * engine decides what each outcome means for statuses (engine/exit-policy.ts).
 */

export type MemberOutcome =
  /** The command ran and ended: its code (128+N for a signal N), and why when the runtime knows more (OOM killed). */
  | { kind: "exited"; code: number; reason?: string }
  /**
   * The command could not be started: a sandbox that would not come up, a member stopped before its command
   * ran. (A missing binary is the command's own exit 127 where the runtime cannot tell a failed exec from it.)
   */
  | { kind: "start-failed"; message: string }
  /** The task's image could not be had. */
  | { kind: "image-pull"; message: string }
  /** The pool itself failed under the member (a node lost, an engine error). */
  | { kind: "backend-error"; message: string }
  /** The pool took the member's place away (memory pressure, a drained node). */
  | { kind: "evicted"; message: string }
  /** A more important workload took the member's place. */
  | { kind: "preempted"; message: string }
  /** The member was placed but never became ready in the time the pool allows. */
  | { kind: "start-timeout"; message: string }
  /** troupe lost track of the attempt and cannot know how it ended. */
  | { kind: "lost"; message: string }
  /** Its `url:` inputs or outputs could not be moved: OSMO's data exit code (2010-2014) and the store's reason. */
  | { kind: "data-failed"; code: number; message: string };

export type OutcomeKind = MemberOutcome["kind"];

/**
 * What a runtime throws where a task cannot start for a reason that has a
 * status of its own (an image that cannot be had: FAILED_IMAGE_PULL).
 * Anything else thrown while starting is a start error.
 */
export class TaskStartError extends Error {
  constructor(
    message: string,
    readonly status: "FAILED_IMAGE_PULL" | "FAILED_START_ERROR" | "FAILED_BACKEND_ERROR",
  ) {
    super(message);
  }
}

/** The outcome a start failure is, from what was thrown. */
export function startFailure(error: unknown): MemberOutcome {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof TaskStartError) {
    if (error.status === "FAILED_IMAGE_PULL") return { kind: "image-pull", message };
    if (error.status === "FAILED_BACKEND_ERROR") return { kind: "backend-error", message };
  }
  return { kind: "start-failed", message };
}

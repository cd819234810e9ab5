/**
 * Every image of a run is made ready (checked, and pulled as the pull policy
 * says) as the run starts, alongside its first groups, not when each
 * group's turn comes: an image that cannot be had fails what it fails at
 * once, not after hours of upstream work.
 *
 * What fails is what would have failed at the group's turn, only sooner
 * (SPEC-REFERENCE, "Group semantics"): the image's tasks end
 * FAILED_IMAGE_PULL with the engine's reason; a group whose lead is one of
 * them (or any of them, with ignoreNonleadStatus: false) fails, its other
 * members FAILED ("lead task finished"), and its downstream groups
 * FAILED_UPSTREAM. The rest of the run goes on, as sibling branches do in
 * OSMO: their outputs are kept, for `troupe restart` once the image can be
 * had. A non-lead task of the image in a group that ignores non-leads fails
 * at its group's turn (its group may still complete). Groups already
 * admitted fail through their own start, which waits for the same answer.
 */
import type { CompiledWorkflow } from "../plan/index.js";
import { TaskStartError, type RunSession } from "../port/index.js";
import type { FailureStatus, GroupStatus } from "./statuses.js";

export interface UnavailableImage {
  image: string;
  status: Extract<FailureStatus, "FAILED_IMAGE_PULL" | "FAILED_START_ERROR" | "FAILED_BACKEND_ERROR">;
  message: string;
}

/**
 * Asks the run's `session` (when its pool runs images) for every image of the groups that
 * are still to run; `onUnavailable` hears of each that cannot be had.
 */
export function checkImagesAtStart(
  plan: CompiledWorkflow,
  groupStatuses: readonly GroupStatus[],
  session: Pick<RunSession, "ensureImage">,
  onUnavailable: (unavailable: UnavailableImage) => void,
): void {
  if (!session.ensureImage) return;
  const images = new Set<string>();
  plan.groups.forEach((group, g) => {
    if (notStarted(groupStatuses[g]!)) for (const task of group.tasks) images.add(task.image);
  });
  for (const image of images)
    session
      .ensureImage(image)
      .catch((error: Error) =>
        onUnavailable({ image, status: error instanceof TaskStartError ? error.status : "FAILED_IMAGE_PULL", message: error.message }),
      );
}

/** A group that has not been admitted yet: what an unavailable image fails now rather than at its turn. */
export function notStarted(status: GroupStatus): boolean {
  return status === "SUBMITTING" || status === "WAITING" || status === "SCHEDULING";
}

/**
 * The tasks of `image` whose failure ends their group (its lead, or any
 * member where ignoreNonleadStatus is false), by group and task index.
 */
export function tasksThatFailTheirGroup(plan: CompiledWorkflow, image: string): Array<{ g: number; t: number }> {
  const out: Array<{ g: number; t: number }> = [];
  plan.groups.forEach((group, g) =>
    group.tasks.forEach((task, t) => {
      if (task.image === image && (task.lead || !group.ignoreNonleadStatus)) out.push({ g, t });
    }),
  );
  return out;
}

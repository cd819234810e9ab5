/**
 * What a member's RESCHEDULE does to its group, as OSMO does it: the
 * rescheduled member gets a new attempt in a fresh sandbox; when it is the
 * lead, or any member of a group with `ignoreNonleadStatus: false`, its
 * siblings whose commands run are restarted in place (OSMO's ctrl stops the
 * user command and starts it again in the same pod, past the group's barrier
 * again): the same attempt, its sandbox, files, /tmp and address kept. A
 * sibling whose runtime cannot do that, or whose command has not started yet,
 * gets a fresh attempt with the rescheduled member instead. Pure: the run
 * (run.ts) does what this decides.
 */
import { isFinal, type TaskStatus } from "./statuses.js";

export interface MemberView {
  /** The current attempt's status. */
  status: TaskStatus | null;
  /** Its runtime can restart its command in place (PreparedMember.restart). */
  restartsInPlace: boolean;
}

export interface ReschedulePlan {
  /** Members whose current attempt ends RESCHEDULED and who start again in a fresh sandbox, the rescheduled one first. */
  fresh: number[];
  /** Siblings whose command restarts in its own sandbox, released with the fresh ones. */
  inPlace: number[];
}

export function planReschedule(
  group: { ignoreNonleadStatus: boolean; tasks: ReadonlyArray<{ lead: boolean }> },
  rescheduled: number,
  members: readonly MemberView[],
): ReschedulePlan {
  const plan: ReschedulePlan = { fresh: [rescheduled], inPlace: [] };
  const restartsSiblings = group.tasks[rescheduled]!.lead || !group.ignoreNonleadStatus;
  if (!restartsSiblings) return plan;
  members.forEach((member, i) => {
    if (i === rescheduled || isFinal(member.status ?? "WAITING")) return;
    if (member.status === "RUNNING" && member.restartsInPlace) plan.inPlace.push(i);
    else plan.fresh.push(i);
  });
  return plan;
}

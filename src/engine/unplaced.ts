/**
 * Why a cluster has not placed a member yet (GroupListener.unplaced: its scheduler's words, such as "0/3 nodes
 * are available: 3 Insufficient cpu"): the task's SCHEDULING reason, and its group's, so that a user sees what
 * the group waits for while its queue timeout runs, and the timeout's reason says it too.
 */
import type { CompiledGroup } from "../plan/index.js";
import type { RunState } from "./run-state.js";

/** Task t's attempt `retryId` of group g is not placed, for `reason`: recorded when the reason is new. */
export function noteUnplaced(state: RunState, group: CompiledGroup, g: number, t: number, retryId: number, reason: string): void {
  const task = state.tasks[g]![t]!;
  if (task.retryId !== retryId || task.status !== "SCHEDULING" || task.unplaced === reason) return;
  task.unplaced = reason;
  state.setTask(g, t, "SCHEDULING", `the cluster has not placed it: ${reason}`);
  const groupState = state.groups[g]!;
  if (groupState.status !== "SCHEDULING" || groupState.unplaced === reason) return;
  groupState.unplaced = reason;
  state.setGroup(g, "SCHEDULING", `the cluster has not placed ${group.tasks[t]!.name}: ${reason}`);
}

/** What the queue timeout's reason adds of why the cluster had not placed the group, if it said. */
export function unplacedCause(state: RunState, g: number): string {
  const reason = state.groups[g]!.unplaced;
  return reason ? `; the cluster's last word: ${reason}` : "";
}

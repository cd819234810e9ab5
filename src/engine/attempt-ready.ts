/**
 * An attempt as its sandbox comes up: stopped once (a stop asked for while it
 * was coming up reaches it once it is up), or handed to the release as a
 * ReadyMember when its task still wants it.
 */
import { isFinal } from "./statuses.js";
import type { LiveAttempt, RunState } from "./run-state.js";

/** A member whose sandbox waits for the group's release: a new attempt's, or one restarted in place (`inPlace`). */
export interface ReadyMember {
  t: number;
  retryId: number;
  attempt: LiveAttempt;
  inPlace?: boolean;
}

/**
 * Stops an attempt, once (again only to hurry it: a shorter grace): at once
 * while it is being placed, prepared or is up; one between the two (its
 * inputs being readied before its prepare) is stopped when it is up
 * (`cameUp`).
 */
export function stopAttempt(attempt: LiveAttempt, graceMs: number): Promise<void> {
  if (attempt.stopGrace !== undefined && attempt.stopGrace <= graceMs) return Promise.resolve();
  attempt.stopGrace = graceMs;
  attempt.transfers?.abort();
  if (!attempt.up && !attempt.placing && !attempt.preparing) return Promise.resolve();
  attempt.stopSent = true;
  return attempt.handle.stop(attempt.key, graceMs);
}

/** The attempt's sandbox is up: a stop asked for meanwhile reaches it now. */
export function cameUp(attempt: LiveAttempt): void {
  attempt.up = true;
  const grace = attempt.stopGrace;
  if (grace !== undefined && !attempt.stopSent) void attempt.handle.stop(attempt.key, grace);
}

/** Attempt `retryId` of task t is up: the member to release, or undefined when it is stopped instead. */
export function readyMember(state: RunState, g: number, t: number, retryId: number, attempt: LiveAttempt): ReadyMember | undefined {
  const task = state.tasks[g]![t]!;
  // Its inputs could not be had: stopped now that it is up (stopAttempt), to end with their failure.
  if (attempt.dataFailure) {
    cameUp(attempt);
    return undefined;
  }
  // The group may have ended while this sandbox came up (lead failed, cancel, timeout): stopped at once.
  if (task.retryId !== retryId || isFinal(task.status ?? "WAITING")) {
    attempt.stopGrace = 0;
    cameUp(attempt);
    return undefined;
  }
  cameUp(attempt);
  return { t, retryId, attempt };
}

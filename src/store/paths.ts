/**
 * Where a run's files live under TROUPE_HOME: the model's layout
 * (model/run-layout.ts), with the names checked. Names become path segments,
 * so anything that could leave the run's directory is refused.
 */
import { TroupeError } from "../errors/index.js";
import { attemptLogPath, isPathSegment, relativeRunDir as runDirOf } from "../model/index.js";

export const DB_FILE = "troupe.db";

/** Refuses a name that is not a single, ordinary path segment. */
export function checkSegment(what: string, value: string): string {
  if (!isPathSegment(value)) {
    throw new TroupeError("E_STORE_BAD_NAME", `${what} ${JSON.stringify(value)} cannot be used in a file path`, "usage");
  }
  return value;
}

export function checkRetryId(retryId: number): number {
  if (!Number.isSafeInteger(retryId) || retryId < 0) {
    throw new TroupeError("E_STORE_BAD_RETRY", `retry id ${retryId} is not a non-negative integer`, "usage");
  }
  return retryId;
}

/** The run's directory relative to TROUPE_HOME. */
export function relativeRunDir(runId: string): string {
  return runDirOf(checkSegment("run id", runId));
}

/** A task attempt's log file relative to TROUPE_HOME (the attempt triggers in migrations.ts store the same). */
export function relativeLogPath(runId: string, taskName: string, retryId: number): string {
  return attemptLogPath(relativeRunDir(runId), checkSegment("task name", taskName), checkRetryId(retryId));
}

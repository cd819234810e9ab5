/**
 * Where a run's files live, in one place: its directory under TROUPE_HOME
 * (`runs/<runId>`), and in it each task attempt's log, output directory and
 * sandbox. Paths are joined with "/" (no node:path, so a browser may import
 * this); names are taken as they are: the store refuses, before a run is
 * made, names that are not single path segments (isPathSegment).
 */

/** The directory of every run, relative to TROUPE_HOME. */
export const RUNS_DIR = "runs";

/** Whether `name` is one ordinary path segment: it cannot climb out of, or reach beside, the directory it is joined to. */
export function isPathSegment(name: string): boolean {
  return name !== "" && !name.includes("/") && !name.includes("\\") && !name.includes("..") && !name.includes("\0");
}

/** A run's directory relative to TROUPE_HOME: `runs/<runId>`. */
export function relativeRunDir(runId: string): string {
  return `${RUNS_DIR}/${runId}`;
}

/** The directory of a run's task logs, under its run directory `runDir` (absolute or relative, as given). */
export function runLogDir(runDir: string): string {
  return `${runDir}/logs`;
}

/** A task attempt's log file: `<runDir>/logs/<task>.<retryId>.log`. */
export function attemptLogPath(runDir: string, taskName: string, retryId: number): string {
  return `${runLogDir(runDir)}/${taskName}.${retryId}.log`;
}

/** A task attempt's output directory (`{{output}}`): `<runDir>/outputs/<task>/<retryId>`. */
export function attemptOutputDir(runDir: string, taskName: string, retryId: number): string {
  return `${runDir}/outputs/${taskName}/${retryId}`;
}

/**
 * The directory of a task attempt's input `index` when it is its own (`{{input:N}}` of a `url:` input, downloaded
 * there, or of a task input with a `regex`, its matching files linked there): `<runDir>/inputs/<task>/<retryId>/<index>`.
 */
export function attemptInputDir(runDir: string, taskName: string, retryId: number, index: number): string {
  return `${runDir}/inputs/${taskName}/${retryId}/${index}`;
}

/**
 * The directory of a task attempt's checkpoint `index` when it is its own (its `path` is not in the task's
 * output: the task sees this directory there): `<runDir>/checkpoints/<task>/<retryId>/<index>`.
 */
export function attemptCheckpointDir(runDir: string, taskName: string, retryId: number, index: number): string {
  return `${runDir}/checkpoints/${taskName}/${retryId}/${index}`;
}

/** Where a run's runtime keeps its sandboxes' files (removed when the run ends): `<runDir>/sandboxes`. */
export function runSandboxesDir(runDir: string): string {
  return `${runDir}/sandboxes`;
}

/** A task attempt's sandbox directory: `<runDir>/sandboxes/<task>.<retryId>`. */
export function attemptSandboxDir(runDir: string, taskName: string, retryId: number): string {
  return `${runSandboxesDir(runDir)}/${taskName}.${retryId}`;
}

/** The state directories of a run's kept tasks (those that outlive troupe, runtime/kept-task.ts): `<runDir>/kept`. */
export function runKeptDir(runDir: string): string {
  return `${runDir}/kept`;
}

/** A kept task attempt's state directory: `<runDir>/kept/<task>.<retryId>`. */
export function attemptKeptDir(runDir: string, taskName: string, retryId: number): string {
  return `${runKeptDir(runDir)}/${taskName}.${retryId}`;
}

/**
 * The data store a run kept its tasks' outputs in (intermediate storage: its URL, one line), written as the run
 * starts: a later run's `task: WORKFLOW_ID:TASK` input finds the output there when this machine has no copy.
 */
export function runDataStoreFile(runDir: string): string {
  return `${runDir}/data-store`;
}

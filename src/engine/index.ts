export { WorkflowRun, LEAD_HEAD_START_MS, type RunOptions, type RunResult } from "./run.js";
export {
  schedule,
  findUnschedulable,
  fits,
  type Capacity,
  type SchedulerInput,
  type SchedulerAction,
  type Decision,
  type GroupSnapshot,
  type Unschedulable,
} from "./scheduler.js";
export { aggregateWorkflowStatus } from "./aggregate.js";
export { DEFAULT_MAX_PARALLEL, maxParallelFor } from "./max-parallel.js";
export {
  TaskStatus,
  WorkflowStatus,
  FAILURE_STATUSES,
  PlatformExitCode,
  isFinal,
  isFailure,
  checkTransition,
  IllegalTransitionError,
  type GroupStatus,
} from "./statuses.js";
export { systemClock, type Clock } from "./clock.js";
export { resumedRunFrom, type ResumedRun } from "./resume.js";
export { SharedPool, type PoolPriority } from "./shared-pool.js";
export { recordRunNotStarted, recordRunSettled, type RunRecorder, type EngineEvent } from "./recorder.js";
export { resolveTokens, buildLaunch, type TokenContext } from "./launch.js";

/** How a workflow run is set (WorkflowRun's options) and how it ended. */
import type { ReusedGroups } from "../model/index.js";
import type { CompiledWorkflow, ExitActionRule } from "../plan/index.js";
import type { DataPlane, PoolCapabilities, RunSession, TaskCredentials } from "../port/index.js";
import type { Capacity } from "./capacity-ledger.js";
import type { Clock } from "./clock.js";
import type { EngineEvent, RunRecorder } from "./recorder.js";
import type { ResumedRun } from "./resume.js";
import type { PoolPriority, SharedPool } from "./shared-pool.js";
import type { WorkflowStatus } from "./statuses.js";

export interface RunOptions {
  runId: string;
  plan: CompiledWorkflow;
  /** The run's session of its pool (port/pool.ts). */
  session: RunSession;
  /** What the pool does itself (PoolCapabilities); by default the engine places and the runtime writes the logs. */
  capabilities?: Partial<Pick<PoolCapabilities, "placement" | "localLogs" | "mounts" | "dataPaths" | "sandboxAtPlacement">>;
  recorder: RunRecorder;
  /** The run's data directory: task outputs live under it. */
  dataDir: string;
  /** Moves tasks' `url:` inputs and outputs (an object store's, with the user's data credentials); without it such tasks cannot start. */
  data?: DataPlane;
  /**
   * What the tasks' `credentials:` give them (environment, files, secrets to
   * mask), by task name, decided by the driver before the run; a task with
   * `credentials:` and none here cannot start.
   */
  credentials?: TaskCredentials;
  /**
   * Where the outputs of other workflows' tasks that tasks take as inputs
   * (`task: WORKFLOW_ID:TASK`) are, by `WORKFLOW_ID:TASK` as the plan has
   * them (store/foreign-outputs.ts); an input without one cannot start.
   */
  foreignOutputs?: ReadonlyMap<string, string>;
  /**
   * The pool's data store, `s3://BUCKET/PREFIX` (intermediate storage): every task's output is uploaded to
   * PREFIX/RUN/TASK/RETRY/ when its command ends and its consumers' task inputs are downloaded from there, so
   * that tasks pass data without sharing a disk. Without one, consumers read their upstream's directory.
   */
  dataStore?: string;
  /**
   * Outputs of other workflows' tasks that were kept in a data store, by `WORKFLOW_ID:TASK` (their URLs,
   * store/foreign-outputs.ts): downloaded from there when this run has a store or no copy is on this machine.
   */
  foreignStored?: ReadonlyMap<string, string>;
  /** The pool's `default_mounts` (`SRC[:DEST]`), shown to every task besides its own `volumeMounts`. */
  defaultMounts?: readonly string[];
  capacity: Capacity;
  maxParallel: number;
  /**
   * A pool shared with other runs (the server's): its capacity and task
   * slots replace `capacity` and `maxParallel`, and `priority` orders the
   * runs waiting for it (see shared-pool.ts).
   */
  pool?: SharedPool;
  priority?: PoolPriority;
  /**
   * Commit the record of commands starting before they start (the server,
   * whose tasks outlive it: its next start must not take a started attempt
   * for one still preparing). Other writes may stay batched: what they say
   * is found again at a resume (the keepers record how each task ended).
   */
  durableStarts?: boolean;
  /** Retries allowed per task (OSMO's max_retry_per_task; default 0). */
  maxRetries: number;
  poolExitActions?: readonly ExitActionRule[];
  /** Grace between the polite signal and the kill when stopping a task. */
  stopGraceMs?: number;
  /**
   * How long a member's sandbox may take to come up, from the runtime's prepare to ready, before it ends
   * FAILED_START_TIMEOUT (start-deadline.ts; default DEFAULT_START_TIMEOUT_MS, 30 minutes; 0: no limit).
   */
  startTimeoutMs?: number;
  /** Head start of a group's lead over its siblings (default LEAD_HEAD_START_MS; 0: all at once). */
  leadHeadStartMs?: number;
  clock?: Clock;
  onEvent?: (event: EngineEvent) => void;
  /** Something went wrong that changes no status but should be said (a task's log copy failed). */
  onWarning?: (message: string) => void;
  /**
   * A restart: groups (by index) that completed in the run it restarts. They
   * are not run again; their tasks' outputs are that run's.
   */
  reused?: ReusedGroups;
  /**
   * Go on with a run another process was driving (see resume.ts): running
   * attempts are re-attached through the runtime, the rest scheduled as usual.
   * With `reused` too (a restart resumed), those groups' outputs are found there.
   */
  resume?: ResumedRun;
}

export interface RunResult {
  status: WorkflowStatus;
}

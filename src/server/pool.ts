/** A pool of the server: what its workflows may use and where they run. */
import type { Capacity, SharedPool } from "../engine/index.js";
import type { ExitActionRule } from "../plan/index.js";
import type { PoolBackend } from "../port/index.js";

export interface Pool {
  name: string;
  capacity: Capacity;
  maxRetries: number;
  maxParallel: number;
  /** How long a task's sandbox may take to come up (engine RunOptions.startTimeoutMs; absent: the default, 30m). */
  startTimeoutMs?: number;
  /** Exit actions applied after each task's own. */
  exitActions: readonly ExitActionRule[];
  /** Tasks with `privileged: true` may run (as root); refused otherwise. */
  privilegedAllowed: boolean;
  /** Tasks with `hostNetwork: true` may run on the machine's own network; refused otherwise. */
  hostNetworkAllowed?: boolean;
  /** Host paths (and what is under them) tasks' `volumeMounts` may show them; refused otherwise. */
  allowedMounts: readonly string[];
  /** Mounts (`SRC[:DEST]`) every task of the pool gets. */
  defaultMounts: readonly string[];
  /** Its data store, `s3://BUCKET/PREFIX` (intermediate storage: RunOptions.dataStore); absent: tasks read each other's directories. */
  dataStore?: string;
  /** Where its runs run: the pool's runtime, chosen once for all of them. */
  backend: PoolBackend;
}

/** A pool's load as GET /api/pool shows it: its capacity, what its runs hold now, and how many runs wait. */
export interface PoolLoad {
  name: string;
  runtime: string;
  capacity: { cpus: number; gpus: number; memory_bytes: number; tasks: number };
  used: { cpus: number; gpus: number; memory_bytes: number; tasks: number };
  /** Workflows on the pool now, and how many of them have a group waiting for resources. */
  running_workflows: number;
  queued_workflows: number;
}

export function poolLoad(pool: Pool, shared: SharedPool): PoolLoad {
  const { used, activeTasks } = shared.ledger;
  return {
    name: pool.name,
    runtime: pool.backend.kind,
    capacity: { cpus: pool.capacity.cpu, gpus: pool.capacity.gpu, memory_bytes: pool.capacity.memoryBytes, tasks: pool.maxParallel },
    used: { cpus: used.cpu, gpus: used.gpu, memory_bytes: used.memoryBytes, tasks: activeTasks },
    running_workflows: shared.runs,
    queued_workflows: shared.queued,
  };
}

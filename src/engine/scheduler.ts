/**
 * The scheduler: a pure function of (plan, state, capacity, now) -> actions.
 * It never sleeps and never does I/O; the run loop applies its actions and
 * wakes it again at `wakeAt` (the next timeout) or on the next event.
 */
import type { CompiledWorkflow, ResourceDemand } from "../plan/index.js";
import { isFinal, type GroupStatus } from "./statuses.js";

export interface Capacity {
  cpu: number;
  gpu: number;
  memoryBytes: number;
}

export interface GroupSnapshot {
  status: GroupStatus;
  /** When it started waiting for resources (SCHEDULING). */
  queuedAt?: number;
  /** When its commands were released (RUNNING). */
  runningAt?: number;
}

export interface SchedulerInput {
  plan: CompiledWorkflow;
  groups: readonly GroupSnapshot[];
  capacity: Capacity;
  /** Reserved by admitted groups that have not ended. */
  used: Capacity;
  /** Tasks of admitted groups that have not ended. */
  activeTasks: number;
  /** At most this many tasks at once; a larger group is admitted alone. */
  maxParallel: number;
  /** False: admit nothing now (a run of higher priority waits for the same pool). */
  mayAdmit?: boolean;
  now: number;
}

export type SchedulerAction =
  | { kind: "enqueue"; group: number }
  | { kind: "fail-upstream"; group: number; upstream: number }
  | { kind: "admit"; group: number }
  | { kind: "queue-timeout"; group: number }
  | { kind: "exec-timeout"; group: number };

export interface Decision {
  actions: SchedulerAction[];
  /** When to ask again even if nothing happens (the earliest pending timeout). */
  wakeAt: number | undefined;
}

export function fits(demand: ResourceDemand, used: Capacity, capacity: Capacity): boolean {
  return (
    used.cpu + demand.cpu <= capacity.cpu &&
    used.gpu + demand.gpu <= capacity.gpu &&
    used.memoryBytes + demand.memoryBytes <= capacity.memoryBytes
  );
}

export function schedule(input: SchedulerInput): Decision {
  const { plan, capacity, now } = input;
  const status = input.groups.map((g) => g.status);
  const queuedAt = input.groups.map((g) => g.queuedAt);
  const used = { ...input.used };
  let active = input.activeTasks;
  const actions: SchedulerAction[] = [];
  let wakeAt: number | undefined;
  const wake = (at: number) => (wakeAt = wakeAt === undefined ? at : Math.min(wakeAt, at));
  const { queueMs, execMs } = plan.timeouts;

  // Topological order: an upstream group's fate is known before its consumers are looked at.
  for (const group of plan.groups) {
    const i = group.index;
    if (status[i] === "WAITING") {
      const failed = group.upstream.find((u) => isFinal(status[u] as string) && status[u] !== "COMPLETED");
      if (failed !== undefined) {
        actions.push({ kind: "fail-upstream", group: i, upstream: failed });
        status[i] = "FAILED_UPSTREAM";
        continue;
      }
      if (!group.upstream.every((u) => status[u] === "COMPLETED")) continue;
      actions.push({ kind: "enqueue", group: i });
      status[i] = "SCHEDULING";
      queuedAt[i] = now;
    }
    if (status[i] === "SCHEDULING") {
      const size = group.tasks.length;
      const roomForTasks = active === 0 || active + size <= input.maxParallel;
      if (input.mayAdmit !== false && roomForTasks && fits(group.demand, used, capacity)) {
        actions.push({ kind: "admit", group: i });
        status[i] = "INITIALIZING";
        used.cpu += group.demand.cpu;
        used.gpu += group.demand.gpu;
        used.memoryBytes += group.demand.memoryBytes;
        active += size;
      } else if (queueMs !== undefined) {
        const deadline = (queuedAt[i] ?? now) + queueMs;
        if (now >= deadline) {
          actions.push({ kind: "queue-timeout", group: i });
          status[i] = "FAILED_QUEUE_TIMEOUT";
        } else {
          wake(deadline);
        }
      }
    } else if (status[i] === "RUNNING" && execMs !== undefined) {
      const deadline = (input.groups[i]?.runningAt ?? now) + execMs;
      if (now >= deadline) actions.push({ kind: "exec-timeout", group: i });
      else wake(deadline);
    }
  }
  return { actions, wakeAt };
}

export interface Unschedulable {
  group: string;
  demand: ResourceDemand;
  capacity: Capacity;
}

/** Groups that could never be admitted, even on an idle pool. */
export function findUnschedulable(plan: CompiledWorkflow, capacity: Capacity): Unschedulable[] {
  const idle = { cpu: 0, gpu: 0, memoryBytes: 0 };
  return plan.groups.filter((g) => !fits(g.demand, idle, capacity)).map((g) => ({ group: g.name, demand: g.demand, capacity }));
}

/**
 * The scheduler: a pure function of (plan, state, capacity, now) -> actions.
 * It never sleeps and never does I/O; the run loop applies its actions and
 * wakes it again at `wakeAt` (the next timeout) or on the next event.
 */
import type { CompiledWorkflow, ResourceDemand } from "../plan/index.js";
import { addDemand, fits, type Capacity } from "./capacity-ledger.js";
import { isFinal, type GroupStatus } from "./statuses.js";

export { fits, type Capacity } from "./capacity-ledger.js";


export interface GroupSnapshot {
  status: GroupStatus;
  /** When it started waiting for resources (SCHEDULING). */
  queuedAt?: number;
  /** When its commands were released (RUNNING). */
  runningAt?: number;
  /**
   * Admitted, and SCHEDULING while the cluster places it (PoolCapabilities.placement
   * "cluster"): not admitted again; its queue timeout still runs.
   */
  placing?: boolean;
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
  /**
   * The groups that may have something to do (scheduling-focus.ts); without it every group is looked at.
   * Given, the others are taken to have nothing to do: the result is the same, found in less time.
   */
  focus?: {
    /** WAITING groups an upstream group of which ended since they were last looked at. */
    waiting: ReadonlySet<number>;
    running: ReadonlySet<number>;
    /** No SCHEDULING group has a lower index. */
    schedulingFrom: number;
    schedulingCount: number;
  };
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

export function schedule(input: SchedulerInput): Decision {
  const { plan, capacity, now, focus } = input;
  const status: Array<GroupStatus | undefined> = focus ? [] : input.groups.map((g) => g.status);
  const statusOf = (i: number) => status[i] ?? input.groups[i]?.status;
  const queuedAt: Array<number | undefined> = [];
  const used = { ...input.used };
  let active = input.activeTasks;
  const actions: SchedulerAction[] = [];
  let wakeAt: number | undefined;
  const wake = (at: number) => (wakeAt = wakeAt === undefined ? at : Math.min(wakeAt, at));
  const { queueMs, execMs } = plan.timeouts;
  const least = leastDemand(plan);
  // Once nothing fits (the least demand of any group does not), no group is admitted for the rest of the pass.
  const saturated = () =>
    input.mayAdmit === false || (active !== 0 && active + least.tasks > input.maxParallel) || !fits(least.demand, used, capacity);

  // In a focused pass, the groups downstream of one this pass ends are looked at too.
  let ended = (_i: number): void => undefined;
  const visit = (i: number): void => {
    const group = plan.groups[i]!;
    if (statusOf(i) === "WAITING") {
      const failed = group.upstream.find((u) => isFinal(statusOf(u) as string) && statusOf(u) !== "COMPLETED");
      if (failed !== undefined) {
        actions.push({ kind: "fail-upstream", group: i, upstream: failed });
        status[i] = "FAILED_UPSTREAM";
        ended(i);
        return;
      }
      if (!group.upstream.every((u) => statusOf(u) === "COMPLETED")) return;
      actions.push({ kind: "enqueue", group: i });
      status[i] = "SCHEDULING";
      queuedAt[i] = now;
    }
    if (statusOf(i) === "SCHEDULING") {
      const size = group.tasks.length;
      const roomForTasks = active === 0 || active + size <= input.maxParallel;
      const placing = input.groups[i]?.placing === true;
      if (!placing && input.mayAdmit !== false && roomForTasks && fits(group.demand, used, capacity)) {
        actions.push({ kind: "admit", group: i });
        status[i] = "INITIALIZING";
        addDemand(used, group.demand);
        active += size;
      } else if (queueMs !== undefined) {
        const deadline = (queuedAt[i] ?? input.groups[i]?.queuedAt ?? now) + queueMs;
        if (now >= deadline) {
          actions.push({ kind: "queue-timeout", group: i });
          status[i] = "FAILED_QUEUE_TIMEOUT";
          ended(i);
        } else {
          wake(deadline);
        }
      }
    } else if (statusOf(i) === "RUNNING" && execMs !== undefined) {
      const deadline = (input.groups[i]?.runningAt ?? now) + execMs;
      if (now >= deadline) actions.push({ kind: "exec-timeout", group: i });
      else wake(deadline);
    }
  };

  if (!focus) {
    // Topological order: an upstream group's fate is known before its consumers are looked at.
    for (const group of plan.groups) visit(group.index);
    return { actions, wakeAt };
  }

  // The same visits in the same (topological) order, of the groups that may have something to do:
  // the candidates (waiting, running, and downstream of a group this pass ends) merged with a walk
  // over the SCHEDULING groups that stops once nothing more can be admitted or time out.
  const candidates = new Candidates([...focus.waiting, ...(execMs !== undefined ? focus.running : [])]);
  ended = (i) => candidates.addAll(plan.groups[i]!.downstream);
  let s = focus.schedulingFrom;
  let schedulingLeft = focus.schedulingCount;
  const n = plan.groups.length;
  for (;;) {
    if (schedulingLeft > 0 && (queueMs !== undefined || !saturated())) while (s < n && input.groups[s]?.status !== "SCHEDULING") s++;
    else s = n;
    const c = candidates.peek() ?? n;
    const i = Math.min(s, c);
    if (i >= n) break;
    if (i === s) {
      s++;
      schedulingLeft--;
    }
    if (i === c) candidates.pop();
    visit(i);
  }
  return { actions, wakeAt };
}

/** Group indices in ascending order, each once; those added are above the last taken (topological order). */
class Candidates {
  private readonly sorted: number[];
  private readonly seen: Set<number>;
  private at = 0;

  constructor(indices: number[]) {
    this.seen = new Set(indices);
    this.sorted = [...this.seen].sort((a, b) => a - b);
  }

  peek(): number | undefined {
    return this.sorted[this.at];
  }

  pop(): void {
    this.at++;
  }

  addAll(indices: readonly number[]): void {
    for (const i of indices) {
      if (this.seen.has(i)) continue;
      this.seen.add(i);
      // Usually in order after the last one; otherwise inserted in place (past the ones taken).
      let k = this.sorted.length;
      while (k > this.at && this.sorted[k - 1]! > i) k--;
      this.sorted.splice(k, 0, i);
    }
  }
}

const leastDemands = new WeakMap<CompiledWorkflow, { demand: ResourceDemand; tasks: number }>();

/** The least of each demand over the plan's groups: what any group needs at the least to be admitted. */
function leastDemand(plan: CompiledWorkflow): { demand: ResourceDemand; tasks: number } {
  let least = leastDemands.get(plan);
  if (!least) {
    const demand = { cpu: Infinity, gpu: Infinity, memoryBytes: Infinity, storageBytes: Infinity };
    let tasks = Infinity;
    for (const g of plan.groups) {
      demand.cpu = Math.min(demand.cpu, g.demand.cpu);
      demand.gpu = Math.min(demand.gpu, g.demand.gpu);
      demand.memoryBytes = Math.min(demand.memoryBytes, g.demand.memoryBytes);
      tasks = Math.min(tasks, g.tasks.length);
    }
    least = { demand, tasks };
    leastDemands.set(plan, least);
  }
  return least;
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

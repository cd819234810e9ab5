/**
 * One pool's capacity shared by every run on it (the server's pools): what
 * each run reserves counts against the same cpus, gpus, memory and task
 * slots. Priority orders the runs: a run does not admit a group while a run
 * of higher priority has a group waiting for resources (so freed capacity
 * goes to it first); runs of the same priority share the pool as it comes.
 */
import type { ResourceDemand } from "../plan/index.js";
import { GpuDevices } from "./gpu-devices.js";
import type { Capacity } from "./scheduler.js";

export type PoolPriority = "HIGH" | "NORMAL" | "LOW";

const RANK: Record<PoolPriority, number> = { HIGH: 0, NORMAL: 1, LOW: 2 };

/** What the pool knows of a run on it. */
export interface PoolMember {
  readonly priority: PoolPriority;
  /** Asks the run to look at its groups again (capacity was freed, or a run ahead of it stopped waiting). */
  wake(): void;
}

export class SharedPool {
  readonly used: Capacity = { cpu: 0, gpu: 0, memoryBytes: 0 };
  /** Which of the pool's GPUs are whose, across its runs. */
  readonly gpuDevices: GpuDevices;
  activeTasks = 0;
  private readonly members = new Set<PoolMember>();
  /** Runs with a group waiting for resources. */
  private readonly blocked = new Set<PoolMember>();

  constructor(
    readonly capacity: Capacity,
    readonly maxParallel: number,
  ) {
    this.gpuDevices = new GpuDevices(capacity.gpu);
  }

  join(member: PoolMember): void {
    this.members.add(member);
  }

  leave(member: PoolMember): void {
    this.members.delete(member);
    this.setBlocked(member, false);
  }

  /** False while a run of higher priority waits for resources. */
  mayAdmit(member: PoolMember): boolean {
    for (const other of this.blocked) if (RANK[other.priority] < RANK[member.priority]) return false;
    return true;
  }

  setBlocked(member: PoolMember, blocked: boolean): void {
    if (blocked === this.blocked.has(member)) return;
    if (blocked) this.blocked.add(member);
    else {
      this.blocked.delete(member);
      // Runs held back for it may go now.
      this.wakeOthers(member);
    }
  }

  reserve(demand: ResourceDemand, tasks: number): void {
    this.used.cpu += demand.cpu;
    this.used.gpu += demand.gpu;
    this.used.memoryBytes += demand.memoryBytes;
    this.activeTasks += tasks;
  }

  release(demand: ResourceDemand, tasks: number, by: PoolMember): void {
    this.used.cpu -= demand.cpu;
    this.used.gpu -= demand.gpu;
    this.used.memoryBytes -= demand.memoryBytes;
    this.activeTasks -= tasks;
    this.wakeOthers(by);
  }

  /** Wakes the other runs, those of higher priority first (they tick first and take what they need). */
  private wakeOthers(except: PoolMember): void {
    const waiting = [...this.blocked].filter((m) => m !== except).sort((a, b) => RANK[a.priority] - RANK[b.priority]);
    for (const member of waiting) member.wake();
  }
}

/**
 * One pool's capacity shared by every run on it (the server's pools): what
 * each run reserves counts against the same cpus, gpus, memory and task
 * slots. Priority orders the runs: a run does not admit a group while a run
 * of higher priority has a group waiting for resources (so freed capacity
 * goes to it first); runs of the same priority share the pool as it comes.
 */
import { CapacityLedger, type Capacity } from "./capacity-ledger.js";
import type { GpuDevices } from "./gpu-devices.js";

export type PoolPriority = "HIGH" | "NORMAL" | "LOW";

const RANK: Record<PoolPriority, number> = { HIGH: 0, NORMAL: 1, LOW: 2 };

/** What the pool knows of a run on it. */
export interface PoolMember {
  readonly priority: PoolPriority;
  /** The run looks at its groups now, admitting what fits (capacity was freed, or a run ahead of it stopped waiting). */
  wake(): void;
}

export class SharedPool {
  /** What the pool's runs have taken, together. */
  readonly ledger: CapacityLedger;
  private readonly members = new Set<PoolMember>();
  /** Runs with a group waiting for resources. */
  private readonly blocked = new Set<PoolMember>();

  constructor(
    readonly capacity: Capacity,
    readonly maxParallel: number,
  ) {
    this.ledger = new CapacityLedger(capacity);
  }

  /** How many runs are on the pool now. */
  get runs(): number {
    return this.members.size;
  }

  /** How many of them have a group waiting for resources. */
  get queued(): number {
    return this.blocked.size;
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

  /** Which of the pool's GPUs are whose, across its runs. */
  get gpuDevices(): GpuDevices {
    return this.ledger.gpuDevices;
  }

  /** `by` gave capacity back (to the ledger): the runs waiting for it look again. */
  released(by: PoolMember): void {
    this.wakeOthers(by);
  }

  private wakeScheduled = false;

  /**
   * Wakes the runs waiting for the pool, once for any number of releases in a
   * turn of the event loop: those of higher priority first (they take what
   * they need first), in the order they began to wait, and only while a task
   * slot is free (with every slot taken no group can be admitted; the rest
   * wait for the next release). A server with a thousand runs waiting then
   * looks at a few of them per release, not at all of them.
   */
  private wakeOthers(_except: PoolMember): void {
    if (this.wakeScheduled) return;
    this.wakeScheduled = true;
    setImmediate(() => {
      this.wakeScheduled = false;
      const waiting = [...this.blocked].sort((a, b) => RANK[a.priority] - RANK[b.priority]);
      for (const member of waiting) {
        if (this.ledger.activeTasks >= this.maxParallel) return;
        if (this.blocked.has(member)) member.wake();
      }
    });
  }
}

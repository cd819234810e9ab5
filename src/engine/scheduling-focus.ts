/**
 * Which groups a scheduling pass needs to look at, kept up to date as group
 * statuses change, so that a pass costs what changed rather than the size of
 * the workflow: with 100,000 groups, a pass over all of them after every
 * task's exit was quadratic (most of the run's time).
 *
 * A group can have something to do in a pass only when it is
 * - WAITING and one of its upstream groups ended since it was last looked at
 *   (or it has just started waiting): `takeWaiting()`;
 * - SCHEDULING (admission, queue timeout): walked from `schedulingFrom`;
 * - RUNNING (exec timeout): `running`.
 * The others (SUBMITTING, INITIALIZING, ended) have nothing to do.
 */
import type { CompiledWorkflow } from "../plan/index.js";
import { isFinal, type GroupStatus } from "./statuses.js";

export class SchedulingFocus {
  private waiting = new Set<number>();
  readonly running = new Set<number>();
  /** How many groups are SCHEDULING. */
  schedulingCount = 0;
  /** How many groups have ended. */
  endedCount = 0;
  /** No SCHEDULING group has a lower index (the walk starts here). */
  private schedulingLow = 0;

  constructor(
    private readonly plan: CompiledWorkflow,
    private readonly statusOf: (g: number) => GroupStatus,
  ) {}

  /** Every group's status as it is now (a resumed run's, taken over without transitions). */
  rebuild(): void {
    this.waiting.clear();
    this.running.clear();
    this.schedulingCount = 0;
    this.endedCount = 0;
    this.schedulingLow = 0;
    this.plan.groups.forEach((_, g) => this.entered(g, this.statusOf(g)));
  }

  /** A group went from `from` to `to` (RunState.setGroup). */
  changed(g: number, from: GroupStatus, to: GroupStatus): void {
    if (from === "SCHEDULING") this.schedulingCount--;
    if (from === "RUNNING") this.running.delete(g);
    if (isFinal(from)) this.endedCount--;
    this.entered(g, to);
  }

  private entered(g: number, status: GroupStatus): void {
    if (status === "WAITING") this.waiting.add(g);
    else if (status === "RUNNING") this.running.add(g);
    else if (status === "SCHEDULING") {
      if (this.schedulingCount === 0 || g < this.schedulingLow) this.schedulingLow = g;
      this.schedulingCount++;
    } else if (isFinal(status)) {
      this.endedCount++;
      for (const d of this.plan.groups[g]!.downstream) if (this.statusOf(d) === "WAITING") this.waiting.add(d);
    }
  }

  /** The WAITING groups to look at in the next pass; looked at, they are forgotten until an upstream group ends. */
  takeWaiting(): Set<number> {
    const taken = this.waiting;
    this.waiting = new Set();
    return taken;
  }

  /** The lowest index of a SCHEDULING group (when there is one). */
  get schedulingFrom(): number {
    if (this.schedulingCount === 0) return this.plan.groups.length;
    while (this.statusOf(this.schedulingLow) !== "SCHEDULING") this.schedulingLow++;
    return this.schedulingLow;
  }

  get allEnded(): boolean {
    return this.endedCount === this.plan.groups.length;
  }
}

/**
 * What a run's groups hold of their pool from admission until nothing of
 * them is left: their demand in the capacity ledger (the run's own, or its
 * shared pool's) and which GPUs their members have, recorded so that a
 * server resuming the run gives them to no one else.
 */
import type { CompiledGroup, CompiledWorkflow } from "../plan/index.js";
import type { CapacityLedger } from "./capacity-ledger.js";
import type { RunRecorder } from "./recorder.js";
import type { GroupState } from "./run-state.js";
import type { PoolMember, SharedPool } from "./shared-pool.js";
import { isFinal } from "./statuses.js";

interface HoldingsOf {
  runId: string;
  plan: CompiledWorkflow;
  recorder: RunRecorder;
  groups: GroupState[];
  ledger: CapacityLedger;
  /** The pool shared with other runs, told when capacity comes back (it wakes the runs waiting for it). */
  pool?: SharedPool;
  member: PoolMember;
}

export class RunHoldings {
  constructor(private readonly run: HoldingsOf) {}

  /** Group g is admitted: its capacity is taken; `had`, the GPUs its members had before troupe restarted. */
  take(g: number, had?: number[][] | null): void {
    const { plan, ledger, groups } = this.run;
    const group = plan.groups[g] as CompiledGroup;
    ledger.take(group.demand, group.tasks.length);
    groups[g]!.holdsCapacity = true;
    if (group.demand.gpu > 0) {
      const devices = ledger.gpuDevices;
      const gpus = (had && devices.takeThese(had)) ?? devices.take(group.tasks.map((task) => task.resources.gpu));
      groups[g]!.gpus = gpus;
      this.run.recorder.updateGroup(this.run.runId, g, { gpus });
    }
  }

  /** Gives back what group g holds once it has ended and nothing of it is alive; whether it did. */
  giveBackIfDone(g: number): boolean {
    const { plan, ledger, groups, recorder, runId } = this.run;
    const state = groups[g]!;
    if (!isFinal(state.status) || state.live > 0 || !state.holdsCapacity) return false;
    const group = plan.groups[g] as CompiledGroup;
    state.holdsCapacity = false;
    ledger.give(group.demand, group.tasks.length);
    if (state.gpus) {
      ledger.gpuDevices.give(state.gpus);
      recorder.updateGroup(runId, g, { gpus: null });
    }
    state.gpus = undefined;
    state.placements = undefined;
    state.placing = false;
    this.run.pool?.released(this.run.member);
    return true;
  }
}

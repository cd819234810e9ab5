/**
 * Resuming a run another troupe process was driving when it ended (the
 * server, restarted): where each group and task stood, read back from the
 * store, for `WorkflowRun` to go on from.
 */
import type { CompiledWorkflow } from "../plan/index.js";
import type { GroupHoldings, RunRecord } from "../store/index.js";
import { TaskStatus, type GroupStatus } from "./statuses.js";

export interface ResumedTask {
  status: TaskStatus;
  retryId: number;
  exitCode: number | null;
  /** The address it had (its group's members keep theirs). */
  ip: string | null;
}

export interface ResumedGroup {
  status: GroupStatus;
  /** When its commands started (epoch ms): exec timeouts count from then. */
  startTime: number | null;
  tasks: ResumedTask[];
  /** The GPUs its members had (they keep them while they run on). */
  gpus?: number[][] | null;
  /** The durable id of its handle in the pool (GroupHandle.id), by which its attempts are found again. */
  handle?: string | null;
}

export interface ResumedRun {
  /** Why it is resumed, for the transition that says so. */
  reason: string;
  /**
   * As recorded: PENDING when the last process ended before the run's start
   * was committed (a submission just accepted), RUNNING otherwise.
   */
  status?: "PENDING" | "RUNNING";
  groups: ResumedGroup[];
}

const KNOWN = new Set<string>(Object.values(TaskStatus));

/** The run's state from its record; throws (with what differs) when the record does not match the plan. */
export function resumedRunFrom(
  record: RunRecord,
  plan: CompiledWorkflow,
  reason: string,
  holdings: ReadonlyArray<GroupHoldings> = [],
): ResumedRun {
  if (record.groups.length !== plan.groups.length)
    throw new Error(`the record has ${record.groups.length} groups, the spec ${plan.groups.length}`);
  const status = (value: string, what: string): TaskStatus => {
    if (!KNOWN.has(value)) throw new Error(`${what} has the unknown status ${value}`);
    return value as TaskStatus;
  };
  if (record.status !== "PENDING" && record.status !== "RUNNING") throw new Error(`the run is ${record.status}, not unfinished`);
  return {
    reason,
    status: record.status,
    groups: plan.groups.map((group, g) => {
      const recorded = record.groups[g]!;
      if (recorded.name !== group.name || recorded.tasks.length !== group.tasks.length)
        throw new Error(`group ${g} is ${recorded.name} in the record, ${group.name} in the spec`);
      const groupStatus = status(recorded.status, `group ${group.name}`);
      if (groupStatus === "RESCHEDULED") throw new Error(`group ${group.name} is RESCHEDULED, which a group never is`);
      return {
        status: groupStatus,
        startTime: recorded.start_time ? Date.parse(recorded.start_time) : null,
        gpus: holdings[g]?.gpus ?? null,
        handle: holdings[g]?.handle ?? null,
        tasks: group.tasks.map((task, t) => {
          const r = recorded.tasks[t]!;
          if (r.name !== task.name) throw new Error(`task ${t} of ${group.name} is ${r.name} in the record, ${task.name} in the spec`);
          return { status: status(r.status, `task ${task.name}`), retryId: r.retry_id, exitCode: r.exit_code, ip: r.ip };
        }),
      };
    }),
  };
}

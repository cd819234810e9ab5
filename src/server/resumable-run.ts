/**
 * What the server needs to resume a run an earlier server left running with
 * kept tasks: its plan again (from the spec and variables it was submitted
 * with), its pool, and its state as the record has it.
 */
import { resumedRunFrom, type ResumedRun } from "../engine/index.js";
import type { ReusedGroups } from "../model/index.js";
import { completedGroups } from "../store/index.js";
import type { CompiledWorkflow } from "../plan/index.js";
import type { Priority, RunStore } from "../store/index.js";
import type { Planner } from "./plan-submission.js";
import type { Pool } from "./pool.js";

export interface ResumableRun {
  plan: CompiledWorkflow;
  pool: Pool;
  user: string;
  priority: Priority;
  state: ResumedRun;
  reused: ReusedGroups;
}

/** What resuming run `id` takes; throws, saying why, when it cannot be resumed. */
export async function resumableRun(store: RunStore, pools: ReadonlyMap<string, Pool>, planner: Planner, id: string): Promise<ResumableRun> {
  const record = store.getRun(id);
  const submitted = store.submission(id);
  if (!record || !submitted) throw new Error("its record is incomplete");
  const pool = pools.get(record.pool ?? "default");
  if (!pool) throw new Error(`its pool ${record.pool ?? "default"} is not configured any more`);
  const reply = await planner({
    user: record.user ?? "?",
    spec: submitted.spec,
    set: submitted.set,
    setString: submitted.setString,
    env: submitted.env,
    // A run accepted before goes on: the pool's policy is not asked again.
    pool: {
      name: pool.name,
      capacity: pool.capacity,
      maxRetries: pool.maxRetries,
      privilegedAllowed: true,
      hostNetworkAllowed: true,
      hostNetwork: true,
      allowedMounts: ["/"],
    },
    maxTasks: Number.MAX_SAFE_INTEGER,
    wantPlan: true,
  });
  if (reply.kind === "invalid") throw new Error(`its spec no longer validates: ${reply.diagnostics[0]?.message ?? "?"}`);
  if (reply.kind === "refused" || !reply.plan) throw new Error(`its spec is refused now: ${reply.kind === "refused" ? reply.reason : "?"}`);
  const plan = reply.plan;
  // Groups this run (a restart) took over keep their outputs where they are.
  const reused = new Map([...completedGroups(store, id, plan)].filter(([, group]) => group.from !== id));
  return {
    plan,
    pool,
    reused,
    priority: record.priority ?? "NORMAL",
    user: record.user ?? "?",
    state: resumedRunFrom(record, plan, "the server restarted: run resumed, its running tasks re-attached", store.groupHoldings(id)),
  };
}

/** The GPUs of a resumed run's running groups (their members run on, on them). */
export function runningGpus(state: ResumedRun): number[][] {
  return state.groups.flatMap((group) => (group.status === "RUNNING" && group.gpus ? group.gpus : []));
}

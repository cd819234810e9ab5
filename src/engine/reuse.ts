/**
 * A restart (the server's `workflow restart`, `troupe restart` here): a new
 * run of the same spec whose groups that completed in the run it restarts are
 * not run again but taken over, with their tasks' outputs where they are.
 */
import { join } from "node:path";
import type { CompiledWorkflow } from "../plan/index.js";
import type { AttemptRecord, RunRecord, TransitionRecord } from "../store/index.js";
import { reusedFrom } from "../util/reused-reason.js";
import type { RunOptions } from "./run.js";

export type ReusedGroups = NonNullable<RunOptions["reused"]>;
type ReusedGroup = ReusedGroups extends ReadonlyMap<number, infer G> ? G : never;

/** What finding the completed groups reads of the history (RunStore has it). */
export interface RunHistory {
  getRun(id: string): RunRecord | undefined;
  transitions(id: string): TransitionRecord[];
  attempts(id: string): AttemptRecord[];
  runDir(id: string): string;
}

/** Restarts of restarts are followed back this far to the run a group really ran in. */
const MAX_DEPTH = 8;

/**
 * The groups of `plan` that completed in run `runId`, with where their tasks'
 * outputs are: that run's, or, for groups it took over from a run it
 * restarted, that run's (the engine records where from, reusedReason).
 */
export function completedGroups(history: RunHistory, runId: string, plan: CompiledWorkflow, depth = 0): Map<number, ReusedGroup> {
  const record = history.getRun(runId);
  const out = new Map<number, ReusedGroup>();
  if (!record || depth > MAX_DEPTH) return out;
  const transitions = history.transitions(runId);
  const attempts = history.attempts(runId);
  plan.groups.forEach((group, g) => {
    const before = record.groups.find((x) => x.name === group.name);
    if (before?.status !== "COMPLETED") return;
    const completed = transitions.find((t) => t.group === group.name && t.task === null && t.to === "COMPLETED");
    const takenFrom = reusedFrom(completed?.reason);
    const origin = takenFrom !== undefined ? completedGroups(history, takenFrom, plan, depth + 1).get(g) : undefined;
    if (origin) return out.set(g, origin);
    out.set(g, {
      from: runId,
      tasks: group.tasks.map((task) => {
        const latest = attempts.filter((a) => a.task === task.name).reduce((n, a) => Math.max(n, a.retry_id), 0);
        const exitCode = before.tasks.find((t) => t.name === task.name)?.exit_code ?? 0;
        return { outputDir: join(history.runDir(runId), "outputs", task.name, String(latest)), exitCode };
      }),
    });
  });
  return out;
}

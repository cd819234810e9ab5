/**
 * What a restart takes over from the run it restarts: the groups that
 * completed there, and where their tasks' outputs are. A group that run had
 * itself taken over (its `reused_from`) is followed back to the run it really
 * ran in.
 */
import { attemptOutputDir, type ReusedGroup, type RunRecord } from "../model/index.js";

/** What finding the completed groups reads of the history (RunStore has it). */
export interface RunHistory {
  getRun(id: string): RunRecord | undefined;
  runDir(id: string): string;
}

/** The groups and tasks of the workflow being restarted, by name, in plan order. */
export interface RestartShape {
  groups: ReadonlyArray<{ name: string; tasks: ReadonlyArray<{ name: string }> }>;
}

/** Restarts of restarts are followed back this far to the run a group really ran in. */
const MAX_DEPTH = 8;

/**
 * The groups of `plan` (by index) that completed in run `runId`, with where their tasks' outputs are: that
 * run's, or, for groups it took over from a run it restarted, that run's.
 */
export function completedGroups(history: RunHistory, runId: string, plan: RestartShape, depth = 0): Map<number, ReusedGroup> {
  const record = history.getRun(runId);
  const out = new Map<number, ReusedGroup>();
  if (!record || depth > MAX_DEPTH) return out;
  plan.groups.forEach((group, g) => {
    const before = record.groups.find((x) => x.name === group.name);
    if (before?.status !== "COMPLETED") return;
    const origin = before.reused_from !== undefined ? completedGroups(history, before.reused_from, plan, depth + 1).get(g) : undefined;
    if (origin) return out.set(g, origin);
    out.set(g, {
      from: runId,
      tasks: group.tasks.map((task) => {
        const ran = before.tasks.find((t) => t.name === task.name);
        // The task's current attempt is its latest: the one that completed.
        return { outputDir: attemptOutputDir(history.runDir(runId), task.name, ran?.retry_id ?? 0), exitCode: ran?.exit_code ?? 0 };
      }),
    });
  });
  return out;
}

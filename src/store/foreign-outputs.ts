/**
 * Inputs from other workflows (`inputs: - task: WORKFLOW_ID:TASK`): the
 * output of TASK's attempt that completed in run WORKFLOW_ID, found in the
 * history before a run starts. A group that run had taken over from a run
 * it restarted is followed back to where it really ran. Whose runs may be
 * read is the caller's to say (a server: the submitter's own).
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { attemptOutputDir, runDataStoreFile, storedOutputUrl, type RunRecord } from "../model/index.js";
import { normalizeName } from "../spec/index.js";
import type { RunHistory } from "./restart-origins.js";

/** The key of an input from another workflow: `WORKFLOW_ID:TASK` as the plan has it (RunOptions.foreignOutputs). */
export function foreignOutputKey(workflowId: string, task: string): string {
  return `${workflowId}:${task}`;
}

/** The inputs from other workflows a plan has, as compiled (plan/types.ts `workflow-task`). */
export interface ForeignInputs {
  groups: ReadonlyArray<{
    tasks: ReadonlyArray<{ name: string; inputs: ReadonlyArray<{ kind: string; workflowId?: string; task?: string }> }>;
  }>;
}

/** Restarts of restarts are followed back this far. */
const MAX_DEPTH = 8;

/** Notes that run `runDir`'s tasks keep their outputs in the data store `store` (RunOptions.dataStore). */
export function recordDataStore(runDir: string, store: string): void {
  writeFileSync(runDataStoreFile(runDir), `${store}\n`);
}

/** The data store run `runDir` kept its tasks' outputs in, if it had one. */
export function recordedDataStore(runDir: string): string | undefined {
  try {
    return readFileSync(runDataStoreFile(runDir), "utf8").trim() || undefined;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/**
 * Where each of the plan's inputs from other workflows is (by foreignOutputKey): its directory on this machine
 * (`outputs`), and its URL where that run kept its outputs in a data store (`stored`); or why it cannot be had
 * (one line each, naming the task that asks): no such run that `mayRead` lets this user read, no such
 * task in it, a task that did not complete, an output neither on disk nor in a store.
 */
export function foreignOutputs(
  history: RunHistory,
  plan: ForeignInputs,
  mayRead: (record: RunRecord) => boolean,
): { outputs: Map<string, string>; stored: Map<string, string>; problems: string[] } {
  const outputs = new Map<string, string>();
  const stored = new Map<string, string>();
  const problems: string[] = [];
  for (const task of plan.groups.flatMap((g) => g.tasks))
    for (const input of task.inputs) {
      if (input.kind !== "workflow-task" || input.workflowId === undefined || input.task === undefined) continue;
      const key = foreignOutputKey(input.workflowId, input.task);
      if (outputs.has(key) || stored.has(key)) continue;
      const found = outputOf(history, input.workflowId, input.task, mayRead, 0);
      if ("problem" in found) {
        problems.push(`task ${task.name}'s input ${input.workflowId}:${input.task}: ${found.problem}`);
        continue;
      }
      if (found.url !== undefined) stored.set(key, found.url);
      if (existsSync(found.dir)) outputs.set(key, found.dir);
      else if (found.url === undefined)
        problems.push(`task ${task.name}'s input ${input.workflowId}:${input.task}: its output (${found.dir}) is no longer there`);
    }
  return { outputs, stored, problems };
}

function outputOf(
  history: RunHistory,
  runId: string,
  taskName: string,
  mayRead: (record: RunRecord) => boolean,
  depth: number,
): { dir: string; url?: string } | { problem: string } {
  const record = history.getRun(runId);
  if (!record || !mayRead(record)) return { problem: `there is no workflow ${runId} of yours` };
  for (const group of record.groups) {
    const task = group.tasks.find((t) => normalizeName(t.name) === normalizeName(taskName));
    if (!task) continue;
    if (task.status !== "COMPLETED") return { problem: `task ${task.name} of ${runId} is ${task.status}, not COMPLETED` };
    if (group.reused_from !== undefined && depth < MAX_DEPTH) return outputOf(history, group.reused_from, task.name, () => true, depth + 1);
    const runDir = history.runDir(runId);
    const store = recordedDataStore(runDir);
    const retryId = task.retry_id ?? 0;
    return {
      dir: attemptOutputDir(runDir, task.name, retryId),
      url: store === undefined ? undefined : storedOutputUrl(store, runId, task.name, retryId),
    };
  }
  return { problem: `workflow ${runId} has no task ${taskName}` };
}

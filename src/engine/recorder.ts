import type { RunRecord } from "../model/index.js";
import type { StatusUpdate, Transition } from "../store/index.js";
import { isFinal } from "./statuses.js";

/** What the engine needs of a store: where to write what happened (RunStore satisfies it). */
export interface RunRecorder {
  recordTransition(runId: string, transition: Transition): void;
  updateRun(runId: string, update: StatusUpdate): void;
  updateGroup(runId: string, group: number, update: StatusUpdate): void;
  updateTask(runId: string, group: number, task: number, update: StatusUpdate): void;
  logPath(runId: string, groupName: string, taskName: string, retryId: number): string;
  /** Commit what was recorded so far (when writes are batched). */
  flush?(): void;
}

/** A change the engine made, for live views. */
export interface EngineEvent {
  kind: "run" | "group" | "task";
  group?: string;
  task?: string;
  retryId?: number;
  from: string | null;
  to: string;
  reason: string;
  time: number;
}

/**
 * A run that never started (its runtime could not open): recorded as failed
 * by its backend, with the reason, so that it does not stay PENDING.
 */
export function recordRunNotStarted(recorder: RunRecorder, runId: string, reason: string, now = Date.now()): void {
  recorder.recordTransition(runId, { subject: { kind: "run" }, from: "PENDING", to: "FAILED_BACKEND_ERROR", reason, time: now });
  recorder.updateRun(runId, { status: "FAILED_BACKEND_ERROR", endTime: now });
}

/**
 * A run that had started (here or in an earlier process) and cannot go on:
 * it and its unfinished groups and tasks FAILED_SERVER_ERROR with the reason,
 * through the recorder like any change (so live views of it see the end).
 */
export function recordRunSettled(recorder: RunRecorder, record: RunRecord, reason: string, now = Date.now()): void {
  const to = "FAILED_SERVER_ERROR";
  const update = { status: to, endTime: now };
  record.groups.forEach((group, g) => {
    group.tasks.forEach((task, t) => {
      if (isFinal(task.status)) return;
      const subject = { kind: "task", group: g, task: t, retryId: task.retry_id } as const;
      recorder.recordTransition(record.id, { subject, from: task.status, to, reason, time: now });
      recorder.updateTask(record.id, g, t, { ...update, reason });
    });
    if (isFinal(group.status)) return;
    recorder.recordTransition(record.id, { subject: { kind: "group", group: g }, from: group.status, to, reason, time: now });
    recorder.updateGroup(record.id, g, update);
  });
  recorder.recordTransition(record.id, { subject: { kind: "run" }, from: record.status, to, reason, time: now });
  recorder.updateRun(record.id, update);
}

import type { StatusUpdate, Transition } from "../store/index.js";

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

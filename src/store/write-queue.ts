/**
 * The in-memory queue of writes waiting for the next flush. Consecutive
 * updates of the same row are merged into one operation, except across task
 * attempts: an update that may start a new attempt (a different retryId) is
 * queued on its own so the previous attempt's final state is written first.
 * Only the order of operations on one row matters; rows are independent.
 */
import type { StatusUpdate, Transition } from "./types.js";

export type WriteOp =
  | { kind: "transition"; runId: string; transition: Transition }
  | { kind: "run"; runId: string; update: StatusUpdate }
  | { kind: "group"; runId: string; group: number; update: StatusUpdate }
  | { kind: "task"; runId: string; group: number; task: number; update: StatusUpdate };

type UpdateOp = Exclude<WriteOp, { kind: "transition" }>;

const UPDATE_FIELDS = ["status", "startTime", "endTime", "exitCode", "ip", "retryId", "gpus", "handle", "reason", "reusedFrom"] as const;

/** A copy of `u` without its undefined fields (undefined = leave as is; null = clear). */
export function definedFields(u: StatusUpdate): StatusUpdate {
  const out: StatusUpdate = {};
  for (const field of UPDATE_FIELDS) {
    if (u[field] !== undefined) (out as Record<string, unknown>)[field] = u[field];
  }
  return out;
}

function rowKey(op: UpdateOp): string {
  switch (op.kind) {
    case "run":
      return `r\0${op.runId}`;
    case "group":
      return `g\0${op.runId}\0${op.group}`;
    case "task":
      return `t\0${op.runId}\0${op.group}\0${op.task}`;
  }
}

export class WriteQueue {
  private ops: WriteOp[] = [];
  /** The last queued operation of each row, which a later update of that row may merge into. */
  private latest = new Map<string, UpdateOp>();

  /** Operations queued (after merging). */
  get size(): number {
    return this.ops.length;
  }

  pushTransition(runId: string, t: Transition): void {
    const transition: Transition = { subject: { ...t.subject }, from: t.from, to: t.to, reason: t.reason, time: t.time };
    this.ops.push({ kind: "transition", runId, transition });
  }

  /** Queues an update; `op.update` is taken over (pass a copy). Returns true when it was merged. */
  pushUpdate(op: UpdateOp): boolean {
    const key = rowKey(op);
    const pending = this.latest.get(key);
    const retryId = op.update.retryId;
    if (pending !== undefined && (retryId === undefined || retryId === pending.update.retryId)) {
      Object.assign(pending.update, op.update);
      return true;
    }
    this.ops.push(op);
    this.latest.set(key, op);
    return false;
  }

  /** Takes every queued operation, in order, leaving the queue empty. */
  drain(): WriteOp[] {
    const ops = this.ops;
    this.ops = [];
    this.latest.clear();
    return ops;
  }

  /** Puts back operations whose write failed, ahead of any queued since. */
  restore(ops: WriteOp[]): void {
    this.ops = ops.concat(this.ops);
  }
}

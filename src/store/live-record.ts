/**
 * The record of a run this process is writing, kept in memory as the writes
 * happen, so that reading it (the server's query of a running workflow) needs
 * neither a flush nor 10,000 rows from SQLite. It applies each update exactly
 * as the writer does (writer.ts) and is equal to what `getRun` would read
 * (test/store/live-record.test.ts). Its JSON is kept per block of groups and
 * only the blocks changed since the last read are serialized again (one
 * JSON.stringify per block: 10,000 calls for single-task groups cost twice
 * as much as 80).
 */
import { groupRecord, isoTime } from "./record-rows.js";
import type { GroupRecord, RunRecord, StatusUpdate, TaskRecord } from "./types.js";
import { INITIAL_STATUS } from "./writer.js";

const BLOCK = 128;

export class LiveRecord {
  /** The JSON of groups [b * BLOCK, (b + 1) * BLOCK), without the brackets; undefined once one of them changed. */
  private readonly blockJson: Array<string | undefined>;
  private headJson: string | undefined;

  constructor(private readonly record: RunRecord) {
    this.blockJson = Array.from({ length: Math.ceil(record.groups.length / BLOCK) }, () => undefined);
  }

  get status(): string {
    return this.record.status;
  }

  updateRun(u: StatusUpdate): void {
    applyTimes(this.record, u);
    this.headJson = undefined;
  }

  updateGroup(g: number, u: StatusUpdate): void {
    const group = this.record.groups[g];
    if (!group) return;
    applyTimes(group, u);
    // In the place the reader gives it (record-rows.ts, groupRecord): before the tasks.
    if (u.reusedFrom !== undefined) this.record.groups[g] = groupRecord(group, u.reusedFrom, group.tasks);
    this.blockJson[Math.floor(g / BLOCK)] = undefined;
  }

  updateTask(g: number, t: number, u: StatusUpdate): void {
    const task = this.record.groups[g]?.tasks[t];
    if (!task) return;
    this.blockJson[Math.floor(g / BLOCK)] = undefined;
    if (u.retryId !== undefined && u.retryId !== task.retry_id) {
      // A new attempt: the row starts over (writer.ts, startAttempt).
      Object.assign(task, {
        retry_id: u.retryId,
        status: u.status ?? INITIAL_STATUS.task,
        exit_code: u.exitCode ?? null,
        ip: u.ip ?? null,
        start_time: isoTime(u.startTime ?? null),
        end_time: isoTime(u.endTime ?? null),
        reason: u.reason ?? null,
      } satisfies Partial<TaskRecord>);
    } else {
      applyTimes(task, u);
      if (u.exitCode !== undefined) task.exit_code = u.exitCode;
      if (u.ip !== undefined) task.ip = u.ip;
      if (u.reason !== undefined) task.reason = u.reason;
    }
    // The task's last field, as the reader gives it; kept across attempts (writer.ts).
    if (u.reusedFrom === null) delete task.reused_from;
    else if (u.reusedFrom !== undefined) task.reused_from = u.reusedFrom;
  }

  /** The record as JSON, the same text as JSON.stringify of the record. */
  json(): string {
    const { groups, ...head } = this.record;
    this.headJson ??= JSON.stringify(head);
    const parts = this.blockJson.map(
      (json, b) => (this.blockJson[b] = json ?? JSON.stringify(groups.slice(b * BLOCK, (b + 1) * BLOCK)).slice(1, -1)),
    );
    return `${this.headJson.slice(0, -1)},"groups":[${parts.join(",")}]}`;
  }
}

function applyTimes(target: RunRecord | GroupRecord | TaskRecord, u: StatusUpdate): void {
  if (u.status !== undefined) target.status = u.status;
  if (u.startTime !== undefined) target.start_time = isoTime(u.startTime);
  if (u.endTime !== undefined) target.end_time = isoTime(u.endTime);
}

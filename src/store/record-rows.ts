/**
 * The store's rows (times as epoch milliseconds) and the records built from
 * them (model/records.ts: times as ISO 8601 with milliseconds), for the
 * reader, the live record and a run as it is created.
 */
import type { GroupRecord, NewRun, Priority, RunRecord, ServerRunFields, TaskRecord, TransitionRecord } from "./types.js";
import { INITIAL_STATUS } from "./writer.js";

export interface RunRow {
  id: string;
  name: string;
  status: string;
  submit_time: number;
  start_time: number | null;
  end_time: number | null;
  user: string | null;
  pool: string | null;
  priority: Priority | null;
  labels: string | null;
  tags: string | null;
}
export interface GroupRow {
  idx: number;
  name: string;
  status: string;
  start_time: number | null;
  end_time: number | null;
  reused_from: string | null;
}
export interface TaskRow {
  group_idx: number;
  name: string;
  lead: number;
  status: string;
  exit_code: number | null;
  retry_id: number;
  ip: string | null;
  start_time: number | null;
  end_time: number | null;
  reason: string | null;
  reused_from: string | null;
}
export interface TransitionRow {
  group_name: string | null;
  task_name: string | null;
  retry_id: number | null;
  from_status: string | null;
  to_status: string;
  reason: string;
  time: number;
}
export interface AttemptRow {
  group_name: string;
  task_name: string;
  retry_id: number;
  status: string;
  exit_code: number | null;
  ip: string | null;
  start_time: number | null;
  end_time: number | null;
  reason: string | null;
  reused_from: string | null;
  log_path: string;
}

export function isoTime(ms: number): string;
export function isoTime(ms: number | null): string | null;
export function isoTime(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/** The fields only server runs have: pool, user, priority, labels, tags (those a run has). */
export function serverFields(row: RunRow): ServerRunFields {
  const tags = row.tags !== null ? (JSON.parse(row.tags) as string[]) : [];
  return {
    ...(row.pool !== null ? { pool: row.pool } : {}),
    ...(row.user !== null ? { user: row.user } : {}),
    ...(row.priority !== null ? { priority: row.priority } : {}),
    ...(row.labels !== null ? { labels: JSON.parse(row.labels) as Record<string, string> } : {}),
    ...(tags.length > 0 ? { tags } : {}),
  };
}

/** A group's record with `reused_from` (when it has one) in its place, before the tasks (live-record.ts keeps it there too). */
export function groupRecord(
  fields: Pick<GroupRecord, "name" | "status" | "start_time" | "end_time">,
  reusedFrom: string | null,
  tasks: GroupRecord["tasks"],
): GroupRecord {
  const { name, status, start_time, end_time } = fields;
  return { name, status, start_time, end_time, ...(reusedFrom !== null ? { reused_from: reusedFrom } : {}), tasks };
}

/** A run's record from its rows (tasks in group and task order). */
export function runRecord(run: RunRow, groupRows: GroupRow[], taskRows: Iterable<TaskRow>): RunRecord {
  const groups: GroupRecord[] = groupRows.map((g) =>
    groupRecord({ ...g, start_time: isoTime(g.start_time), end_time: isoTime(g.end_time) }, g.reused_from, []),
  );
  for (const t of taskRows) {
    const task: TaskRecord = {
      name: t.name,
      lead: t.lead !== 0,
      status: t.status,
      exit_code: t.exit_code,
      retry_id: t.retry_id,
      ip: t.ip,
      start_time: isoTime(t.start_time),
      end_time: isoTime(t.end_time),
      reason: t.reason,
      ...(t.reused_from !== null ? { reused_from: t.reused_from } : {}),
    };
    groups[t.group_idx]?.tasks.push(task);
  }
  return {
    id: run.id,
    name: run.name,
    status: run.status,
    submit_time: isoTime(run.submit_time),
    start_time: isoTime(run.start_time),
    end_time: isoTime(run.end_time),
    ...serverFields(run),
    groups,
  };
}

/**
 * The record `getRun` reads right after `createRun(run)` made run `id`, built
 * from the rows createRun inserts (writer.ts) without reading them back.
 */
export function createdRunRecord(id: string, run: NewRun): RunRecord {
  const row: RunRow = {
    id,
    name: run.name,
    status: INITIAL_STATUS.run,
    submit_time: run.submitTime,
    start_time: null,
    end_time: null,
    user: run.user ?? null,
    pool: run.pool ?? null,
    priority: run.priority ?? null,
    labels: run.labels ? JSON.stringify(run.labels) : null,
    tags: null,
  };
  const blank = { start_time: null, end_time: null, reused_from: null };
  const groups = run.groups.map((g, idx): GroupRow => ({ idx, name: g.name, status: INITIAL_STATUS.group, ...blank }));
  const tasks = run.groups.flatMap((g, group_idx) =>
    g.tasks.map((t): TaskRow => ({
      group_idx,
      name: t.name,
      lead: t.lead ? 1 : 0,
      status: INITIAL_STATUS.task,
      exit_code: null,
      retry_id: 0,
      ip: null,
      reason: null,
      ...blank,
    })),
  );
  return runRecord(row, groups, tasks);
}

export function transitionRecord(r: TransitionRow): TransitionRecord {
  return {
    group: r.group_name,
    task: r.task_name,
    retry_id: r.retry_id,
    from: r.from_status,
    to: r.to_status,
    reason: r.reason,
    time: isoTime(r.time),
  };
}

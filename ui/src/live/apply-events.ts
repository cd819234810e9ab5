/**
 * A workflow's record brought up to date with the status changes the stream pushed, without reading it again:
 * the statuses, reasons and retries of the workflow, its groups and tasks (a 10,000-task record is 2 MB: read
 * again on every burst of events, it kept the page busy). Copy on write: only what changed is a new object, so
 * that React redraws only that. The page still reads the whole record now and then (exit codes, times).
 */
import { isFinal, type RunRecord, type TaskRecord } from "../../../src/model/index.js";

export interface StatusEvent {
  group: string | null;
  task: string | null;
  retry_id: number | null;
  to: string;
  reason: string;
  time: string;
}

export function applyEvents(record: RunRecord, events: readonly StatusEvent[]): RunRecord {
  if (events.length === 0) return record;
  const next: RunRecord = { ...record, groups: record.groups.slice() };
  const groupIndex = new Map(record.groups.map((g, i) => [g.name, i]));
  const copied = new Set<number>();
  const taskIndex = new Map<number, Map<string, number>>();
  const groupAt = (i: number) => {
    if (!copied.has(i)) {
      copied.add(i);
      next.groups[i] = { ...next.groups[i]!, tasks: next.groups[i]!.tasks.slice() };
    }
    return next.groups[i]!;
  };
  for (const event of events) {
    if (event.group === null) {
      next.status = event.to;
      if (event.to === "RUNNING" && next.start_time === null) next.start_time = event.time;
      if (isFinal(event.to)) next.end_time = event.time;
      continue;
    }
    const g = groupIndex.get(event.group);
    if (g === undefined) continue;
    const group = groupAt(g);
    if (event.task === null) {
      group.status = event.to;
      if (event.to === "RUNNING" && group.start_time === null) group.start_time = event.time;
      if (isFinal(event.to)) group.end_time = event.time;
      continue;
    }
    let tasks = taskIndex.get(g);
    if (!tasks) taskIndex.set(g, (tasks = new Map(group.tasks.map((t, i) => [t.name, i]))));
    const t = tasks.get(event.task);
    if (t === undefined) continue;
    const old = group.tasks[t]!;
    const retry = event.retry_id ?? old.retry_id;
    // An event of an earlier attempt (the retried one ending) does not change the task's latest.
    if (retry < old.retry_id) continue;
    const task: TaskRecord = { ...old, status: event.to, reason: event.reason, retry_id: retry };
    if (retry > old.retry_id) Object.assign(task, { start_time: null, end_time: null, exit_code: null, ip: null });
    if (event.to === "RUNNING") task.start_time = event.time;
    if (isFinal(event.to)) task.end_time = event.time;
    group.tasks[t] = task;
  }
  return next;
}
